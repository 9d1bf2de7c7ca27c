# Appended to nginx's objs/Makefile by ./configure: cargo builds the Rust
# static library (cargo decides what to rebuild), and the module's .so
# depends on it. The library's rule runs cargo every time (its prerequisite
# is phony) and make then looks at the library's time again, so a changed
# library relinks the .so. nginx-sys reads this very tree (its headers and objs/),
# whatever NGINX_SOURCE_DIR the environment has. The build directory may be
# relative to the nginx tree (objs, by default) or absolute (--builddir=/...,
# as Debian's dh-sequence-nginx gives it).

case "$NGX_OBJS" in
    /*) ngx_ssl_stapling_objs=$NGX_OBJS ;;
    *) ngx_ssl_stapling_objs="\$\$OLDPWD/$NGX_OBJS" ;;
esac

cat << END >> $NGX_MAKEFILE

$NGX_OBJS/ngx_ssl_stapling_module.so: $ngx_ssl_stapling_lib

$ngx_ssl_stapling_lib: ngx_ssl_stapling_module_cargo
	cd "$ngx_addon_dir" && NGINX_SOURCE_DIR="\$\$OLDPWD" NGINX_BUILD_DIR="$ngx_ssl_stapling_objs" \\
		cargo rustc --release --lib --features nginx-build --crate-type staticlib \\
		--target-dir "$ngx_ssl_stapling_objs/addon/ngx_ssl_stapling_module"

ngx_ssl_stapling_module_cargo:

.PHONY: ngx_ssl_stapling_module_cargo
END
