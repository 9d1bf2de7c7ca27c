#!/usr/bin/perl

# The module loads whether or not a (dynamic) stream module is loaded, in
# either order, and never needs an ngx_stream_* symbol; with stream, its
# stream part (ssl_stapling_store in stream) works, and stream servers are
# stapled where nginx has stream stapling (1.27.2+). Debian builds stream
# as a dynamic module (libnginx-mod-stream), which Test::Nginx loads from
# TEST_NGINX_MODULES after TEST_NGINX_GLOBALS (this module).

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl');
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('web', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->make_cert('tcp', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
# A dynamic stream module is loaded by Test::Nginx (from TEST_NGINX_MODULES)
# after TEST_NGINX_GLOBALS, which loads this one.
my $dynamic_stream = $t->has_module('stream=dynamic');
my $stream_module = qr/load_module \S*ngx_stream_module\.so;\n/;
$t->plan(3 + ($dynamic_stream ? 2 : 1) * ($t->stream_stapling ? 6 : 4));

my $http = <<'EOF';
worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate web.chain.crt;
        ssl_certificate_key web.key;
        ssl_stapling on;
    }
}
EOF
my $stapling = $t->stream_stapling ? 'ssl_stapling on;' : '';
my $stream = $http . <<"EOF";
stream {
    %%TEST_GLOBALS_STREAM%%

    ssl_stapling_store store;
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate tcp.chain.crt;
        ssl_certificate_key tcp.key;
        $stapling
        return "ok\\n";
    }
}
EOF

sub check {
	my ($what, %o) = @_;
	my ($rc, $out) = $t->test_config;
	is($rc, 0, "$what: nginx -t succeeds");
	unlike($out, qr/undefined symbol|cannot open shared object/, "$what: no unresolved symbol");
	$t->run(workers => 2);
	ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 10), "$what: http server stapled");
	if ($o{stream}) {
		my $r = wait_for(sub {
			my $r = $t->handshake(port(8444));
			return $r->{ok} && (!$t->stream_stapling || $r->{staple}) && $r;
		}, 10);
		ok($r && $r->{ok}, "$what: stream server answers");
		if ($t->stream_stapling) {
			ok($r && $r->{staple}, "$what: stream server stapled");
			# One file per staple: the http and the stream server's.
			ok(wait_for(sub { my @f = glob($t->testdir . '/store/*.der'); @f == 2 }, 20),
				"$what: ssl_stapling_store in stream keeps both staples");
		}
	}
	$t->stop;
}

# Without any stream module (with a static one, simply no stream block).
# (Debian's dynamic stream modules all removed: the others need stream.)
$t->edit_globals(sub { s/load_module \S*ngx_stream_\w*module\.so;\n//g })
	->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $http);
check('no stream module');

if ($dynamic_stream) {
	$t->with_module->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $stream);
	check('stream module loaded after this one', stream => 1);
	$t->edit_globals(sub { $_ = $1 . $_ if s/($stream_module)// })
		->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $stream);
	check('stream module loaded before this one', stream => 1);
} else {
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $stream);
	check('stream built into nginx', stream => 1);
}

