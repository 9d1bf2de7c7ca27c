#!/usr/bin/perl

# Responders through an HTTP proxy (ssl_stapling_proxy), with a real proxy
# from Debian (tinyproxy). The responder's name, "localhost", is one the
# test's DNS server (nginx's resolver) does not know but the proxy
# resolves: only the proxy can reach it. The request goes to the proxy in
# absolute form; credentials go as Proxy-Authorization and never into the
# log; a proxy's refusal (407) and a proxy that is down are lines naming
# the proxy and the responder, and the previous staple is kept.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->has_daemon('tinyproxy')->plan(16);
my ($ocsp, $dns, $open, $locked) = (port(8091), port(8980, udp => 1), port(8092), port(8093));
$t->make_ca('root');
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://localhost:$ocsp/") for qw(via direct auth);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->start_dns($dns, 'known.test' => '127.0.0.1');

# Two proxies: one open, one asking for credentials.
for my $p (['proxy', $open, ''], ['locked', $locked, "BasicAuth ops s3cret\n"]) {
	my ($name, $port, $extra) = @$p;
	$t->write_file("$name.conf", "Port $port\nListen 127.0.0.1\nTimeout 30\n"
		. "MaxClients 20\nLogLevel Info\nAllow 127.0.0.1\n$extra");
	$t->start_daemon($name, qr/Starting main loop/, 'tinyproxy', '-d', '-c', "$name.conf");
}

my $conf = sub {
	my ($credentials) = @_;
	return <<"EOF";
worker_processes 2;
# Refreshes back to back: none skipped as too recent.
ssl_stapling_refresh_min_interval 0;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    resolver 127.0.0.1:%%PORT_8980_UDP%%;
    ssl_stapling on;
    server {
        listen 127.0.0.1:8080 ssl;
        ssl_certificate via.chain.crt;
        ssl_certificate_key via.key;
        ssl_stapling_proxy http://127.0.0.1:8092;
    }
    server {
        listen 127.0.0.1:8081 ssl;
        ssl_certificate direct.chain.crt;
        ssl_certificate_key direct.key;
    }
    server {
        listen 127.0.0.1:8082 ssl;
        ssl_certificate auth.chain.crt;
        ssl_certificate_key auth.key;
        ssl_stapling_proxy http://${credentials}127.0.0.1:8093;
    }
    server {
        listen 127.0.0.1:8083;
        location = /status { ssl_stapling_status refresh; }
    }
}
EOF
};
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->(''));
$t->run(workers => 2);

my $cert = sub { qr/certificate "[^"]*\/$_[0]\.chain\.crt"/ };
my $via = $cert->('via');
ok(wait_for(sub { $t->handshake(port(8080))->{staple} }, 10), 'through the proxy: stapled');
like($t->read_file('error.log'), qr/fetching OCSP response for $via from http:\/\/localhost:$ocsp\/ through proxy http:\/\/127\.0\.0\.1:$open/,
	'the log says which proxy');
like($t->read_file('proxy.log'), qr/Request \(file descriptor \d+\): GET http:\/\/localhost:$ocsp\/\S+ HTTP\/1\.1/,
	"the proxy's log shows the request, in absolute form");
is($t->ocsp_requests, 1, 'the responder got it');

my $direct = $cert->('direct');
ok(wait_for(sub { $t->read_file('error.log') =~ /cannot fetch OCSP response for $direct from http:\/\/localhost:$ocsp\/: localhost could not be resolved/ }, 10),
	'without the proxy, the responder cannot be reached');
ok($t->unstapled(port(8081)), 'and nothing is stapled');

my $auth = $cert->('auth');
ok(wait_for(sub { $t->read_file('error.log') =~ /\[warn\] .*cannot fetch OCSP response for $auth from http:\/\/localhost:$ocsp\/: proxy http:\/\/127\.0\.0\.1:$locked answered HTTP status 407 \(Proxy Authentication Required/ }, 10),
	'a proxy asking for credentials: 407 logged, naming the proxy and the responder');
ok($t->unstapled(port(8082)), 'not stapled');

# Credentials configured (a reload), then a refresh on demand.
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->('ops:s3cret@'));
ok($t->reload, 'reloaded with credentials');
my ($status) = $t->http_request(port(8083), '/status?refresh=all', method => 'POST');
is($status, 202, 'refresh requested');
ok(wait_for(sub { $t->handshake(port(8082))->{staple} }, 10), 'with credentials: stapled');
like($t->read_file('locked.log'), qr/Request \(file descriptor \d+\): GET http:\/\/localhost:$ocsp\//,
	"the locked proxy's log shows the request");
unlike($t->read_file('error.log'), qr/s3cret|b3BzOnMzY3JldA/, 'the credentials are nowhere in the error log');

# The open proxy goes down: the next fetch fails, the staple stays.
my $before = $t->handshake(port(8080))->{staple};
$t->stop_daemon('proxy');
($status) = $t->http_request(port(8083), '/status?refresh=all', method => 'POST');
is($status, 202, 'refresh requested again');
ok(wait_for(sub { $t->read_file('error.log') =~ /\[warn\] .*cannot fetch OCSP response for $via from http:\/\/localhost:$ocsp\/: through proxy http:\/\/127\.0\.0\.1:$open: connect\(\) to 127\.0\.0\.1:$open failed \(111: Connection refused\); retry in \d+ s; the previous staple is served until its nextUpdate/ }, 10),
	'proxy down: a line naming the proxy and the responder');
is($t->handshake(port(8080))->{staple}, $before, 'the previous staple is still served');

