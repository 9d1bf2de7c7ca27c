#!/usr/bin/perl

# Servers with ssl_stapling off are left alone: no staple, even with a
# staple file configured; only the servers with stapling on are taken over.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(9 + 3); # 3: the end-of-test checks of $none, below
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->ocsp_response('site.der', ca => 'root', certs => ['site']);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_certificate site.chain.crt;
    ssl_certificate_key site.key;
    ssl_stapling_file site.der;

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_stapling off;
        location / { return 200 "off\n"; }
    }
    server {
        listen 127.0.0.1:8444 ssl;
        location / { return 200 "default\n"; }
    }
    server {
        listen 127.0.0.1:8445 ssl;
        ssl_stapling on;
        location / { return 200 "on\n"; }
    }
}
EOF
$t->run;

like($t->read_file('error.log'), qr/module took over 1 certificate\(s\), 1 staple\(s\), in 1 http and 0 stream server\(s\)/,
	'only the server with stapling on is taken over');

for my $case ([8443, 'off'], [8444, 'default']) {
	my ($p, $name) = @$case;
	my $r = $t->handshake(port($p), request => "GET / HTTP/1.0\r\n\r\n");
	like($r->{response} // '', qr/\n\Q$name\E\n$/, "stapling $name: served");
	ok($r->{ok} && !defined $r->{staple}, "stapling $name: no staple");
}
my $r = $t->handshake(port(8445));
is($r->{staple}, $t->read_file('site.der'), 'stapling on: stapled');

$t->stop;

# No server with stapling: the module stays out of the way entirely.
my $none = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl');
$none->make_ca('root');
$none->make_cert('site', ca => 'root');
$none->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        location / { return 200 "plain\n"; }
    }
}
EOF
$none->run;
$r = $none->handshake(port(8443), request => "GET / HTTP/1.0\r\n\r\n");
like($r->{response} // '', qr/\nplain\n$/, 'no stapling anywhere: served');
ok(!defined $r->{staple}, 'no stapling anywhere: no staple');
unlike($none->read_file('error.log'), qr/ssl_stapling:/, 'no stapling anywhere: module silent');
