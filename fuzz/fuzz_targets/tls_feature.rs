//! Any bytes as the DER of a TLS Feature extension (RFC 7633).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::tls_features;

fuzz_target!(|data: &[u8]| {
    if let Some(features) = tls_features(data) {
        // Each feature is an INTEGER of 1 to 8 content bytes plus 2 header
        // bytes, inside a SEQUENCE header of at least 2.
        assert!(features.len() * 3 + 2 <= data.len());
    }
});
