#!/usr/bin/perl

# The module loads whether or not a (dynamic) stream module is loaded, in
# either order, and never needs an ngx_stream_* symbol; with stream, its
# stream part (ssl_stapling_store in stream) works, and stream servers are
# stapled where nginx has stream stapling (1.27.2+). Debian builds stream
# as a dynamic module (libnginx-mod-stream): TEST_NGINX_STREAM_MODULE.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my $ocsp = $t->port('ocsp');
$t->make_ca('root');
$t->make_cert('web', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->make_cert('tcp', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
my $dynamic_stream = $ENV{TEST_NGINX_STREAM_MODULE};

my $http = <<'EOF';
worker_processes 2;
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        %%CERT web%%
        ssl_stapling on;
    }
}
EOF
my $stapling = $t->stream_stapling ? 'ssl_stapling on;' : '';
my $stream = $http . <<"EOF";
stream {
    ssl_stapling_store store;
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        %%CERT tcp%%
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
	ok(wait_for(sub { $t->handshake($t->port(0))->{staple} }, 10), "$what: http server stapled");
	if ($o{stream}) {
		my $r = wait_for(sub {
			my $r = $t->handshake($t->port(1));
			return $r->{ok} && (!$t->stream_stapling || $r->{staple}) && $r;
		}, 10);
		ok($r && $r->{ok}, "$what: stream server answers");
		if ($t->stream_stapling) {
			ok($r && $r->{staple}, "$what: stream server stapled");
			# One file per staple: the http and the stream server's.
			ok(wait_for(sub { my @f = glob($t->testdir . '/store/*.der'); @f == 2 }, 5),
				"$what: ssl_stapling_store in stream keeps both staples");
		}
	}
	$t->stop;
}

# Without any stream module (with a static one, simply no stream block).
$t->write_config($http, stream_module => 0);
check('no stream module');

if ($dynamic_stream) {
	$t->write_config($stream);
	check('stream module loaded after this one', stream => 1);
	$t->write_config($stream, stream_first => 1);
	check('stream module loaded before this one', stream => 1);
} else {
	$t->write_config($stream);
	check('stream built into nginx', stream => 1);
}

$t->done;
