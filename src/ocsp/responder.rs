//! The HTTP side of an OCSP fetch, without nginx: the responder URL, the
//! request (RFC 5019 GET, or POST for large requests), and the response,
//! parsed with httparse and bounded in size.

use base64::Engine;

/// Responses are a few KB; anything larger than this is refused.
pub const MAX_BODY: usize = 64 * 1024;
/// Status line and headers.
pub const MAX_HEADERS: usize = 16 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("only http:// responders are supported")]
    NotHttp,
    #[error("invalid URL")]
    Invalid,
}

/// `http://host[:port][/path]`, as in an AIA extension or
/// `ssl_stapling_responder`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponderUrl {
    pub host: String,
    pub port: u16,
    /// Always starts with '/'.
    pub path: String,
    /// The host is an IP literal: no resolver needed.
    pub ip: Option<std::net::IpAddr>,
}

impl ResponderUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        let lower: String = url.chars().take(8).collect::<String>().to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err(UrlError::NotHttp);
        }
        let rest = if lower.starts_with("http://") {
            &url[7..]
        } else if url.contains("://") {
            return Err(UrlError::NotHttp);
        } else {
            // nginx accepts "host[:port][/path]" in ssl_stapling_responder.
            url
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(UrlError::Invalid);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or(UrlError::Invalid)?;
            let host = &v6[..end];
            // Brackets hold an IPv6 address, nothing else.
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(UrlError::Invalid);
            }
            let port = match &v6[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or(UrlError::Invalid)?,
            };
            (host, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().map_err(|_| UrlError::Invalid)?),
                None => (authority, 80),
            }
        };
        let bad = |b: u8| b.is_ascii_whitespace() || b.is_ascii_control();
        // The host and the path go into the request line and the Host
        // header as they are: nothing that could end or split them, and a
        // colon in a host only inside brackets.
        if host.is_empty()
            || port == 0
            || host.bytes().any(|b| bad(b) || b == b'[' || b == b']')
            || (host.contains(':') && !authority.starts_with('['))
            || path.bytes().any(bad)
        {
            return Err(UrlError::Invalid);
        }
        Ok(ResponderUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
            ip: host.parse().ok(),
        })
    }

    /// The Host header value.
    pub fn host_header(&self) -> String {
        let host = match self.ip {
            Some(std::net::IpAddr::V6(_)) => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        if self.port == 80 {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

impl std::fmt::Display for ResponderUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// An HTTP proxy responders are reached through (`ssl_stapling_proxy
/// http://[user:password@]host:port`). Its credentials never show: it
/// displays as `http://host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyUrl {
    /// Host and port (a path, if given, is ignored).
    pub url: ResponderUrl,
    /// The `Proxy-Authorization` value, `Basic <base64 of user:password>`.
    pub authorization: Option<String>,
}

impl ProxyUrl {
    pub fn parse(text: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = match text.find("://") {
            Some(i) => (&text[..i + 3], &text[i + 3..]),
            None => ("", text),
        };
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let (userinfo, hostport) = match rest[..authority_end].rfind('@') {
            Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
            None => (None, rest),
        };
        let url = ResponderUrl::parse(&format!("{scheme}{hostport}"))?;
        let authorization = match userinfo {
            None => None,
            Some(u) if u.is_empty() || !u.contains(':') || u.bytes().any(|b| b.is_ascii_control()) => {
                return Err(UrlError::Invalid)
            }
            Some(u) => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(percent_decode(u)?)
            )),
        };
        Ok(ProxyUrl { url, authorization })
    }
}

/// `%XX` escapes of a URL's user information (a password may hold an `@`
/// or a `:` written so).
fn percent_decode(s: &str) -> Result<Vec<u8>, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(UrlError::Invalid)?;
            let hex = std::str::from_utf8(hex).map_err(|_| UrlError::Invalid)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| UrlError::Invalid)?);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

impl std::fmt::Display for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}", self.url.host_header())
    }
}

impl std::fmt::Debug for ProxyUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // No credentials in debug output either.
        write!(f, "ProxyUrl({self})")
    }
}

/// Percent-encodes the base64 alphabet's '+', '/' and '=' (RFC 5019 A.1).
fn url_encode_base64(b64: &str) -> String {
    let mut out = String::with_capacity(b64.len() + 16);
    for c in b64.chars() {
        match c {
            '+' => out.push_str("%2B"),
            '/' => out.push_str("%2F"),
            '=' => out.push_str("%3D"),
            c => out.push(c),
        }
    }
    out
}

/// The HTTP/1.1 request for one DER OCSP request: GET when the encoded
/// request is under 255 bytes (RFC 5019 5), POST otherwise. Through a
/// proxy, the target is in absolute form and the proxy's credentials, if
/// any, go in `Proxy-Authorization`.
pub fn build_request(url: &ResponderUrl, der: &[u8], user_agent: &str, proxy: Option<&ProxyUrl>) -> Vec<u8> {
    let encoded = url_encode_base64(&base64::engine::general_purpose::STANDARD.encode(der));
    let host = url.host_header();
    let origin = if proxy.is_some() {
        format!("http://{host}")
    } else {
        String::new()
    };
    let auth = match proxy.and_then(|p| p.authorization.as_deref()) {
        Some(a) => format!("Proxy-Authorization: {a}\r\n"),
        None => String::new(),
    };
    if encoded.len() < 255 {
        let sep = if url.path.ends_with('/') { "" } else { "/" };
        format!(
            "GET {origin}{}{sep}{encoded} HTTP/1.1\r\nHost: {host}\r\n{auth}User-Agent: {user_agent}\r\n\
             Accept: application/ocsp-response\r\nConnection: close\r\n\r\n",
            url.path
        )
        .into_bytes()
    } else {
        let mut req = format!(
            "POST {origin}{} HTTP/1.1\r\nHost: {host}\r\n{auth}User-Agent: {user_agent}\r\n\
             Content-Type: application/ocsp-request\r\nContent-Length: {}\r\n\
             Accept: application/ocsp-response\r\nConnection: close\r\n\r\n",
            url.path,
            der.len()
        )
        .into_bytes();
        req.extend_from_slice(der);
        req
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HttpError {
    #[error("responder sent an invalid HTTP response")]
    Invalid,
    #[error("responder sent HTTP status {0}")]
    Status(u16),
    #[error("responder sent Content-Type \"{0}\"")]
    ContentType(String),
    #[error("responder's response is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("responder closed the connection before the end of the response")]
    Truncated,
}

/// Accumulates a response as it arrives. `feed` returns the body once it
/// is complete (by Content-Length or chunked encoding); `finish` (at EOF)
/// returns a body delimited by the end of the connection.
#[derive(Default)]
pub struct ResponseReader {
    buf: Vec<u8>,
}

struct Head {
    len: usize,
    status: u16,
    content_length: Option<usize>,
    chunked: bool,
}

impl ResponseReader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
        self.buf.extend_from_slice(data);
        if self.buf.len() > MAX_HEADERS + MAX_BODY + 64 {
            return Err(HttpError::TooLarge);
        }
        self.complete(false)
    }

    pub fn finish(&mut self) -> Result<Vec<u8>, HttpError> {
        self.complete(true)?.ok_or(HttpError::Truncated)
    }

    fn head(&self) -> Result<Option<Head>, HttpError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        let len = match resp.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if self.buf.len() > MAX_HEADERS => return Err(HttpError::TooLarge),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HttpError::Invalid),
        };
        let status = resp.code.ok_or(HttpError::Invalid)?;
        let mut content_length = None;
        let mut chunked = false;
        for h in resp.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| HttpError::Invalid)?
                .trim();
            if h.name.eq_ignore_ascii_case("content-length") {
                let n: usize = value.parse().map_err(|_| HttpError::Invalid)?;
                if content_length.is_some_and(|c| c != n) {
                    return Err(HttpError::Invalid);
                }
                content_length = Some(n);
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.to_ascii_lowercase().ends_with("chunked");
            } else if h.name.eq_ignore_ascii_case("content-type")
                && status == 200
                && !value
                    .to_ascii_lowercase()
                    .starts_with("application/ocsp-response")
            {
                // nginx refuses other content types too.
                return Err(HttpError::ContentType(value.chars().take(64).collect()));
            }
        }
        if status != 200 {
            return Err(HttpError::Status(status));
        }
        if content_length.is_some_and(|n| n > MAX_BODY) {
            return Err(HttpError::TooLarge);
        }
        Ok(Some(Head {
            len,
            status,
            content_length,
            chunked,
        }))
    }

    fn complete(&self, eof: bool) -> Result<Option<Vec<u8>>, HttpError> {
        let Some(head) = self.head()? else {
            return if eof { Err(HttpError::Truncated) } else { Ok(None) };
        };
        debug_assert_eq!(head.status, 200);
        let body = self.buf.get(head.len..).unwrap_or_default();
        if head.chunked {
            return match dechunk(body)? {
                Some(b) => Ok(Some(b)),
                None if eof => Err(HttpError::Truncated),
                None => Ok(None),
            };
        }
        match head.content_length {
            Some(n) if body.len() >= n => Ok(Some(body[..n].to_vec())),
            Some(_) if eof => Err(HttpError::Truncated),
            Some(_) => Ok(None),
            None if body.len() > MAX_BODY => Err(HttpError::TooLarge),
            None if eof => Ok(Some(body.to_vec())),
            None => Ok(None),
        }
    }
}

/// Decodes a chunked body; `None` while the last chunk has not arrived.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, HttpError> {
    let mut out = Vec::new();
    loop {
        let (used, size) = match httparse::parse_chunk_size(data) {
            Ok(httparse::Status::Complete(v)) => v,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(HttpError::Invalid),
        };
        let size = usize::try_from(size).map_err(|_| HttpError::TooLarge)?;
        if out.len().saturating_add(size) > MAX_BODY {
            return Err(HttpError::TooLarge);
        }
        data = &data[used..];
        if size == 0 {
            return Ok(Some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        if &data[size..size + 2] != b"\r\n" {
            return Err(HttpError::Invalid);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

#[cfg(test)]
mod tests;
