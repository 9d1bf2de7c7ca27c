use super::*;

#[test]
fn urls() {
    let u = ResponderUrl::parse("http://ocsp.example.com/").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str(), u.ip),
        ("ocsp.example.com", 80, "/", None)
    );
    let u = ResponderUrl::parse("http://127.0.0.1:8081").unwrap();
    assert_eq!((u.port, u.path.as_str()), (8081, "/"));
    assert_eq!(u.ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(u.host_header(), "127.0.0.1:8081");
    let u = ResponderUrl::parse("HTTP://[::1]:99/ocsp/x").unwrap();
    assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 99, "/ocsp/x"));
    assert_eq!(u.host_header(), "[::1]:99");
    let u = ResponderUrl::parse("ocsp.example.com:8080/path").unwrap();
    assert_eq!(
        (u.host.as_str(), u.port, u.path.as_str()),
        ("ocsp.example.com", 8080, "/path")
    );
    assert_eq!(
        ResponderUrl::parse("https://ocsp.example.com/"),
        Err(UrlError::NotHttp)
    );
    assert_eq!(ResponderUrl::parse("ldap://x/"), Err(UrlError::NotHttp));
    assert_eq!(ResponderUrl::parse("http://"), Err(UrlError::Invalid));
    assert_eq!(ResponderUrl::parse("http://host:0/"), Err(UrlError::Invalid));
    assert_eq!(ResponderUrl::parse("http://host:99999/"), Err(UrlError::Invalid));
    assert_eq!(ResponderUrl::parse("http://u@host/"), Err(UrlError::Invalid));
    // Found by the fuzzer (directive_values): brackets that hold no IPv6
    // address were taken as a host name that printed as another URL.
    assert_eq!(ResponderUrl::parse("http://[:2:]:80"), Err(UrlError::Invalid));
    assert_eq!(ResponderUrl::parse("http://[host]/"), Err(UrlError::Invalid));
    assert_eq!(ResponderUrl::parse("http://a:b:80/"), Err(UrlError::Invalid));
    // Nothing that could split the request line or the Host header.
    assert_eq!(ResponderUrl::parse("http://host/a b"), Err(UrlError::Invalid));
    assert_eq!(
        ResponderUrl::parse("http://host/a\r\nX: y"),
        Err(UrlError::Invalid)
    );
    assert_eq!(ResponderUrl::parse("http://ho]st/"), Err(UrlError::Invalid));
    // What a URL prints parses back to it.
    for text in ["http://[::1]:99/x", "http://h:8080/p?q=1", "http://127.0.0.1/"] {
        let u = ResponderUrl::parse(text).unwrap();
        assert_eq!(ResponderUrl::parse(&u.to_string()), Ok(u));
    }
}

#[test]
fn small_requests_are_get_with_url_encoded_base64() {
    let url = ResponderUrl::parse("http://ocsp.example.com/base").unwrap();
    // 0xfb 0xff 0xfe encodes to "+//+" in base64.
    let req = String::from_utf8(build_request(&url, &[0xfb, 0xff, 0xfe], "ua/1", None)).unwrap();
    assert!(req.starts_with("GET /base/%2B%2F%2F%2B HTTP/1.1\r\n"), "{req}");
    assert!(req.contains("\r\nHost: ocsp.example.com\r\n"));
    assert!(req.contains("\r\nUser-Agent: ua/1\r\n"));
    assert!(req.contains("\r\nConnection: close\r\n"));
    assert!(req.ends_with("\r\n\r\n"));
    let req = String::from_utf8(build_request(
        &ResponderUrl::parse("http://h/").unwrap(),
        &[0],
        "ua",
        None,
    ))
    .unwrap();
    assert!(req.starts_with("GET /AA%3D%3D HTTP/1.1\r\n"), "{req}");
}

#[test]
fn large_requests_are_post() {
    let url = ResponderUrl::parse("http://h:81/p").unwrap();
    let der = vec![7u8; 200]; // 268 base64 characters
    let req = build_request(&url, &der, "ua", None);
    let text = String::from_utf8_lossy(&req);
    assert!(text.starts_with("POST /p HTTP/1.1\r\n"));
    assert!(text.contains("\r\nHost: h:81\r\n"));
    assert!(text.contains("\r\nContent-Type: application/ocsp-request\r\n"));
    assert!(text.contains("\r\nContent-Length: 200\r\n"));
    assert!(req.ends_with(&der));
    // 189 bytes encode to 252 characters: still a GET.
    assert!(build_request(&url, &[0u8; 189], "ua", None).starts_with(b"GET "));
    assert!(build_request(&url, &[0u8; 190], "ua", None).starts_with(b"POST "));
}

fn read_all(chunks: &[&[u8]]) -> Result<Vec<u8>, HttpError> {
    let mut r = ResponseReader::new();
    for c in chunks {
        if let Some(body) = r.feed(c)? {
            return Ok(body);
        }
    }
    r.finish()
}

#[test]
fn content_length_body() {
    let resp =
        b"HTTP/1.0 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: 3\r\n\r\nabcEXTRA";
    assert_eq!(read_all(&[resp]).unwrap(), b"abc");
    // byte by byte
    let chunks: Vec<&[u8]> = resp.chunks(1).collect();
    assert_eq!(read_all(&chunks).unwrap(), b"abc");
}

#[test]
fn body_until_eof_and_chunked() {
    assert_eq!(read_all(&[b"HTTP/1.1 200 OK\r\n\r\nxyz"]).unwrap(), b"xyz");
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    assert_eq!(read_all(&[chunked]).unwrap(), b"abcde");
    let chunks: Vec<&[u8]> = chunked.chunks(2).collect();
    assert_eq!(read_all(&chunks).unwrap(), b"abcde");
}

#[test]
fn errors() {
    assert_eq!(
        read_all(&[b"HTTP/1.1 500 Oops\r\n\r\n"]),
        Err(HttpError::Status(500))
    );
    assert_eq!(
        read_all(&[b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"]),
        Err(HttpError::Status(404))
    );
    assert_eq!(read_all(&[b"garbage\r\n\r\n"]), Err(HttpError::Invalid));
    assert_eq!(
        read_all(&[b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]),
        Err(HttpError::Truncated)
    );
    assert_eq!(
        read_all(&[b"HTTP/1.1 200 OK\r\nContent-Le"]),
        Err(HttpError::Truncated)
    );
    assert_eq!(read_all(&[b""]), Err(HttpError::Truncated));
    assert_eq!(
        read_all(&[b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"]),
        Err(HttpError::ContentType("text/html".into()))
    );
    let big = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", MAX_BODY + 1);
    assert_eq!(read_all(&[big.as_bytes()]), Err(HttpError::TooLarge));
    let mut unbounded = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
    unbounded.extend(std::iter::repeat_n(b'x', MAX_BODY + 1));
    assert_eq!(read_all(&[&unbounded]), Err(HttpError::TooLarge));
    let chunked_big = format!(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        MAX_BODY + 1
    );
    assert_eq!(read_all(&[chunked_big.as_bytes()]), Err(HttpError::TooLarge));
}

#[test]
fn through_a_proxy() {
    let proxy = ProxyUrl::parse("http://ops:s%40cret:x@proxy.example:3128").unwrap();
    assert_eq!(proxy.to_string(), "http://proxy.example:3128");
    assert_eq!(format!("{proxy:?}"), "ProxyUrl(http://proxy.example:3128)");
    // "ops:s@cret:x" in base64.
    assert_eq!(proxy.authorization.as_deref(), Some("Basic b3BzOnNAY3JldDp4"));
    let url = ResponderUrl::parse("http://ocsp.example.com:8080/base").unwrap();
    let req = String::from_utf8(build_request(&url, &[0], "ua", Some(&proxy))).unwrap();
    assert!(
        req.starts_with("GET http://ocsp.example.com:8080/base/AA%3D%3D HTTP/1.1\r\n"),
        "{req}"
    );
    assert!(req.contains("\r\nHost: ocsp.example.com:8080\r\n"));
    assert!(req.contains("\r\nProxy-Authorization: Basic b3BzOnNAY3JldDp4\r\n"));
    let req = build_request(&url, &[7u8; 200], "ua", Some(&proxy));
    assert!(req.starts_with(b"POST http://ocsp.example.com:8080/base HTTP/1.1\r\n"));

    let plain = ProxyUrl::parse("127.0.0.1:3128").unwrap();
    assert_eq!(plain.authorization, None);
    assert_eq!(plain.url.port, 3128);
    let req = String::from_utf8(build_request(&url, &[0], "ua", Some(&plain))).unwrap();
    assert!(!req.contains("Proxy-Authorization"));

    for bad in [
        "https://p:3128",
        "http://@p:3128",
        "http://user@p:3128",
        "http://u:%zz@p",
        "http://u:p@",
    ] {
        assert!(ProxyUrl::parse(bad).is_err(), "{bad}");
    }
}
