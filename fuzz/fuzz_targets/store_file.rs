//! Any bytes as a file in the store: read the way the master reads it
//! (no link followed, no blocking, bounded), then checked as a staple, and
//! any name as a store file name.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::StapleKey;
use ngx_ssl_stapling_module::fuzzing::{check_response, peek_next_update, CertificateStatusId, NoSignatureCheck, TimeRules};
use ngx_ssl_stapling_module::fuzzing::read_file;
use openssl::x509::X509;

fn id() -> &'static CertificateStatusId {
    static ID: OnceLock<CertificateStatusId> = OnceLock::new();
    ID.get_or_init(|| {
        let leaf = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/leaf.pem")).expect("leaf");
        let ca = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/ca.pem")).expect("ca");
        CertificateStatusId::new(&leaf, Some(&ca))
    })
}

fuzz_target!(|data: &[u8]| {
    // tmpfs when there is one: the write is most of an execution.
    let dir = match std::path::Path::new("/dev/shm") {
        d if d.is_dir() => d.to_path_buf(),
        _ => std::env::temp_dir(),
    };
    let path = dir.join(format!("ssl-stapling-fuzz-{}.der", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    match read_file(&path) {
        Ok(der) => {
            assert_eq!(der, data);
            let _ = check_response(&der, id(), &NoSignatureCheck, 1_700_000_000, &TimeRules::default());
            let _ = peek_next_update(&der);
        }
        Err(_) => assert!(data.len() > 64 * 1024),
    }
    if let Ok(name) = std::str::from_utf8(data) {
        if let Some(key) = StapleKey::parse(name) {
            assert_eq!(key.to_string(), name.to_ascii_lowercase());
        }
    }
});
