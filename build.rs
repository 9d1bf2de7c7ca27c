//! Passes the features of the nginx being built against (from nginx-sys)
//! to the compiler as `ngx_feature = "..."` cfgs, e.g. `stream_ssl`, so the
//! code for a block nginx was built without is left out.
fn main() {
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES_CHECK");
    println!(
        "cargo::rustc-check-cfg=cfg(ngx_feature, values({}))",
        std::env::var("DEP_NGINX_FEATURES_CHECK").unwrap_or_else(|_| "any()".to_string())
    );
    println!("cargo::rerun-if-env-changed=DEP_NGINX_FEATURES");
    if let Ok(features) = std::env::var("DEP_NGINX_FEATURES") {
        for feature in features.split(',').map(str::trim) {
            println!("cargo::rustc-cfg=ngx_feature=\"{feature}\"");
        }
    }
    println!("cargo::rerun-if-env-changed=DEP_NGINX_VERSION");
    if let Ok(v) = std::env::var("DEP_NGINX_VERSION") {
        println!("cargo::rustc-env=NGINX_VERSION_BUILT_AGAINST={v}");
    }
}
