//! Tells the compiler what the nginx being built against has, from what
//! nginx-sys found: `ngx_stream_stapling` (stream servers have
//! ssl_stapling, nginx 1.27.2+ built with stream SSL) and
//! `ngx_ssl_certs_array` (nginx keeps a server's certificates in an array).
fn main() {
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES");
    // Stream servers have ssl_stapling since nginx 1.27.2.
    println!("cargo::rustc-check-cfg=cfg(ngx_stream_stapling)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION_NUMBER");
    let number = std::env::var("DEP_NGINX_VERSION_NUMBER")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let stream_ssl = std::env::var("DEP_NGINX_FEATURES")
        .map(|f| f.split(',').any(|f| f.trim() == "stream_ssl"))
        .unwrap_or(false);
    if stream_ssl && number >= 1_027_002 {
        println!("cargo::rustc-cfg=ngx_stream_stapling");
    }
    // nginx 1.27.x replaced the certificate list in SSL_CTX/X509 ex_data
    // with an array in ngx_ssl_t: look at the header actually built against.
    println!("cargo::rustc-check-cfg=cfg(ngx_ssl_certs_array)");
    println!("cargo::rerun-if-env-changed=DEP_NGINX_INCLUDE");
    let includes = std::env::var_os("DEP_NGINX_INCLUDE").unwrap_or_default();
    for dir in std::env::split_paths(&includes) {
        let header = dir.join("ngx_event_openssl.h");
        if let Ok(text) = std::fs::read_to_string(&header) {
            let ssl_s = text
                .split("struct ngx_ssl_s {")
                .nth(1)
                .and_then(|t| t.split("};").next());
            if ssl_s.is_some_and(|body| body.split_whitespace().any(|w| w == "certs;")) {
                println!("cargo::rustc-cfg=ngx_ssl_certs_array");
            }
            println!("cargo::rerun-if-changed={}", header.display());
            break;
        }
    }
}
