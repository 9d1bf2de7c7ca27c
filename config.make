# Appended to nginx's objs/Makefile by ./configure: cargo builds the Rust
# static library (cargo decides what to rebuild), and the module's .so
# depends on it. The library's rule runs cargo every time (its prerequisite
# is phony) and make then looks at the library's time again, so a changed
# library relinks the .so. nginx-sys reads this very tree (its headers and objs/),
# whatever NGINX_SOURCE_DIR the environment has.

cat << END >> $NGX_MAKEFILE

$NGX_OBJS/ngx_ssl_stapling_module.so: $ngx_ssl_stapling_lib

$ngx_ssl_stapling_lib: ngx_ssl_stapling_module_cargo
	cd "$ngx_addon_dir" && NGINX_SOURCE_DIR="\$\$OLDPWD" NGINX_BUILD_DIR="\$\$OLDPWD/$NGX_OBJS" \\
		cargo rustc --release --lib --features nginx-build --crate-type staticlib \\
		--target-dir "\$\$OLDPWD/$NGX_OBJS/addon/ngx_ssl_stapling_module"

ngx_ssl_stapling_module_cargo:

.PHONY: ngx_ssl_stapling_module_cargo
END
