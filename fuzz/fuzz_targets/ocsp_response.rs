//! Any bytes as an OCSP response for the fixture certificate: the checks a
//! fetched, filed or stored response goes through never panic, and accept
//! only what fits the certificate and the time; the path that takes the
//! response's certificates from a cache comes to what parsing it whole does.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use ngx_ssl_stapling_module::fuzzing::{
    check_response, check_whole, peek_next_update, CertificateStatusId, ChainSignatureCheck, NoSignatureCheck,
    SignatureCheck, TimeRules,
};
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::X509;

struct Fixture {
    id: CertificateStatusId,
    /// A time inside the fixture responses' validity.
    now: i64,
    ca: X509,
    store: X509Store,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let leaf = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/leaf.pem")).expect("leaf");
        let ca = X509::from_pem(include_bytes!("../../src/ocsp/fixtures/ca.pem")).expect("ca");
        let mut b = X509StoreBuilder::new().expect("store");
        b.add_cert(ca.clone()).expect("add ca");
        let good = include_bytes!("../../src/ocsp/fixtures/good.der");
        let next = peek_next_update(good).ok().flatten().expect("nextUpdate of good.der");
        Fixture {
            now: next - 3600,
            id: CertificateStatusId::new(&leaf, Some(&ca)),
            ca,
            store: b.build(),
        }
    })
}

fuzz_target!(|input: &[u8]| {
    let f = fixture();
    // The first byte picks the time and the signature check (one check
    // per execution: most of the time goes to OpenSSL's verification).
    let Some((&pick, data)) = input.split_first() else {
        return;
    };
    let now = match pick % 3 {
        0 => f.now,
        1 => 0,
        _ => i64::MAX / 2,
    };
    let chain = [f.ca.clone()];
    // Half the inputs also with a maximum age (ssl_stapling_max_age).
    let rules = TimeRules {
        max_age: (pick >= 128).then_some(900),
        ..TimeRules::default()
    };
    let chain_check = ChainSignatureCheck {
        chain: &chain,
        store: &f.store,
        verify: (pick / 3) % 3 == 2,
    };
    let sig: &dyn SignatureCheck = if (pick / 3) % 3 == 0 {
        &NoSignatureCheck
    } else {
        &chain_check
    };
    let result = check_response(data, &f.id, sig, now, &rules);
    // The response's certificates taken from a cache, the rest parsed on
    // its own, come to what parsing the whole response comes to.
    let whole = check_whole(data, &f.id, sig, now, &rules);
    assert_eq!(format!("{result:?}"), format!("{whole:?}"));
    if let Ok(r) = result {
        assert!(r.next_update.is_none_or(|n| n > now));
        assert_eq!(r.der, data);
        assert!(rules.max_age.is_none_or(|max| now - r.this_update <= max));
    }
    let _ = peek_next_update(data);
});
