use openssl::ocsp::{OcspResponse, OcspResponseStatus};
use openssl::x509::X509;

use super::*;

/// `check_response` with nginx's time rules.
fn check(
    der: &[u8],
    id: &CertificateStatusId,
    sig: &dyn SignatureCheck,
    now: i64,
) -> Result<CheckedResponse, OcspError> {
    check_response(der, id, sig, now, &TimeRules::default())
}

/// `check_validity` with nginx's time rules.
fn validity(this: i64, next: Option<i64>, now: i64) -> Result<(), OcspError> {
    check_validity(this, next, now, &TimeRules::default())
}

fn pem(name: &str) -> X509 {
    let path = format!("{}/src/ocsp/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    X509::from_pem(&std::fs::read(path).expect("fixture")).expect("pem")
}

fn der(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/src/ocsp/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).expect("fixture")
}

fn leaf_id() -> CertificateStatusId {
    CertificateStatusId::new(&pem("leaf.pem"), Some(&pem("ca.pem")))
}

/// (thisUpdate, nextUpdate) of the fixture's single response, read
/// independently of the code under test's window checks.
fn times(name: &str) -> (i64, Option<i64>) {
    let resp = OcspResponse::from_der(&der(name)).unwrap();
    let basic = resp.basic().unwrap();
    let id = leaf_id().cert_id().unwrap();
    let st = basic.find_status(&id).unwrap();
    (
        generalized_to_unix(st.this_update).unwrap(),
        st.next_update().map(|t| generalized_to_unix(t).unwrap()),
    )
}

#[test]
fn good_response_for_our_certificate_is_accepted() {
    let (this, next) = times("good.der");
    let r = check(&der("good.der"), &leaf_id(), &NoSignatureCheck, this + 60).unwrap();
    assert_eq!(r.status, CertStatus::Good);
    assert_eq!(r.this_update, this);
    assert_eq!(r.next_update, next);
    assert_eq!(next.unwrap() - this, 7 * 86_400);
    assert_eq!(r.der, der("good.der"));
}

#[test]
fn response_for_another_certificate_is_refused() {
    let (this, _) = times("good.der");
    let err = check(&der("other.der"), &leaf_id(), &NoSignatureCheck, this).unwrap_err();
    assert_eq!(err, OcspError::NoMatchingResponse);
}

#[test]
fn expired_response_is_refused() {
    let (_, next) = times("good.der");
    let next = next.unwrap();
    let err = check(&der("good.der"), &leaf_id(), &NoSignatureCheck, next + 10).unwrap_err();
    assert_eq!(err, OcspError::Expired(10));
    // nextUpdate itself is already too late: a staple is never served at it.
    assert!(check(&der("good.der"), &leaf_id(), &NoSignatureCheck, next).is_err());
    assert!(check(&der("good.der"), &leaf_id(), &NoSignatureCheck, next - 1).is_ok());
}

#[test]
fn this_update_in_the_future_is_allowed_five_minutes_of_skew() {
    let (this, _) = times("good.der");
    let id = leaf_id();
    assert!(check(&der("good.der"), &id, &NoSignatureCheck, this - 300).is_ok());
    let err = check(&der("good.der"), &id, &NoSignatureCheck, this - 301).unwrap_err();
    assert_eq!(err, OcspError::NotYetValid(301));
}

#[test]
fn revoked_status_is_reported() {
    let (this, _) = times("revoked.der");
    let r = check(&der("revoked.der"), &leaf_id(), &NoSignatureCheck, this).unwrap();
    assert_eq!(r.status, CertStatus::Revoked);
}

#[test]
fn response_without_next_update_has_none() {
    let (this, next) = times("no-next-update.der");
    assert_eq!(next, None);
    let r = check(
        &der("no-next-update.der"),
        &leaf_id(),
        &NoSignatureCheck,
        this + 86_400 * 365,
    )
    .unwrap();
    assert_eq!(r.next_update, None);
}

#[test]
fn garbage_and_truncated_input_are_parse_errors() {
    let id = leaf_id();
    assert_eq!(
        check(b"not der", &id, &NoSignatureCheck, 0).unwrap_err(),
        OcspError::Parse
    );
    let good = der("good.der");
    let cut = &good[..good.len() / 2];
    assert_eq!(
        check(cut, &id, &NoSignatureCheck, 0).unwrap_err(),
        OcspError::Parse
    );
    assert_eq!(
        check(&[], &id, &NoSignatureCheck, 0).unwrap_err(),
        OcspError::Parse
    );
}

#[test]
fn unsuccessful_response_status_is_named() {
    let resp = OcspResponse::create(OcspResponseStatus::TRY_LATER, None).unwrap();
    let err = check(&resp.to_der().unwrap(), &leaf_id(), &NoSignatureCheck, 0).unwrap_err();
    assert_eq!(err, OcspError::NotSuccessful("tryLater"));
    assert_eq!(err.to_string(), "OCSP response status is \"tryLater\"");
}

#[test]
fn without_the_issuer_serial_and_issuer_name_still_match() {
    let (this, _) = times("good.der");
    let no_issuer = CertificateStatusId::new(&pem("leaf.pem"), None);
    let r = check(&der("good.der"), &no_issuer, &NoSignatureCheck, this).unwrap();
    assert_eq!(r.status, CertStatus::Good);
    let err = check(&der("other.der"), &no_issuer, &NoSignatureCheck, this).unwrap_err();
    assert_eq!(err, OcspError::NoMatchingResponse);
}

#[test]
fn validity_window_edges() {
    assert!(validity(100, Some(200), 150).is_ok());
    assert!(validity(100, None, 1_000_000).is_ok());
    assert_eq!(validity(200, Some(100), 150), Err(OcspError::BadValidity));
    assert_eq!(validity(100, Some(200), 200), Err(OcspError::Expired(0)));
}

#[test]
fn skew_and_max_age() {
    let strict = TimeRules {
        skew: 10,
        max_age: Some(900),
    };
    assert!(check_validity(1010, None, 1000, &strict).is_ok());
    assert_eq!(
        check_validity(1011, None, 1000, &strict),
        Err(OcspError::NotYetValid(11))
    );
    assert!(check_validity(100, None, 1000, &strict).is_ok());
    assert_eq!(
        check_validity(99, Some(5000), 1000, &strict),
        Err(OcspError::TooOld { age: 901, max: 900 })
    );
    // Without a maximum age, any thisUpdate in the past will do.
    assert!(validity(0, None, 1_000_000).is_ok());
}

/// The responses parsed with their certificates from a cache give what
/// parsing them whole gives, signature checks included, for every fixture
/// and for each with one byte changed anywhere.
#[test]
fn certificates_from_the_cache_change_no_result() {
    let ca = pem("ca.pem");
    let mut store = openssl::x509::store::X509StoreBuilder::new().unwrap();
    store.add_cert(ca.clone()).unwrap();
    let store = store.build();
    let chain = [ca];
    let id = leaf_id();
    let (this, _) = times("good.der");
    let mut cache = CertCache::default();
    for verify in [true, false] {
        let sig = ChainSignatureCheck {
            chain: &chain,
            store: &store,
            verify,
        };
        for name in ["good.der", "revoked.der", "other.der", "no-next-update.der"] {
            let full = der(name);
            let mut inputs = vec![full.clone()];
            for at in (0..full.len()).step_by(7) {
                let mut m = full.clone();
                m[at] ^= 0x01;
                inputs.push(m);
            }
            for input in inputs {
                let rules = TimeRules::default();
                let whole = check_whole(&input, &id, &sig, this + 60, &rules);
                let cached = check_response_cached(&input, &id, &sig, this + 60, &rules, &mut cache);
                assert_eq!(
                    format!("{cached:?}"),
                    format!("{whole:?}"),
                    "{name}, verify {verify}"
                );
            }
        }
    }
    assert!(check(&der("good.der"), &id, &NoSignatureCheck, this + 60).is_ok());
}
