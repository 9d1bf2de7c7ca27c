#!/usr/bin/perl

# Responder addresses: when a name resolves to several addresses and one
# refuses, the next is tried; a host name without a resolver is one clear
# error line per attempt, never a crash.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(5);
my ($dns, $faults) = (port(8980, udp => 1), port(8081));
$t->make_ca('root');
$t->make_cert('multi', ca => 'root', type => 'ec');
$t->make_cert('noresolver', ca => 'root', type => 'ec');
$t->ocsp_response('multi.good.der', ca => 'root', certs => ['multi'], ndays => 1);
# 127.0.0.2 has no responder: connections to it are refused
$t->start_dns($dns, 'multi.test' => '127.0.0.2,127.0.0.1');
$t->start_fault_responder($faults);

$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

ssl_stapling_refresh 1s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        resolver 127.0.0.1:%%PORT_8980_UDP%% ipv6=off;
        ssl_certificate multi.chain.crt;
        ssl_certificate_key multi.key;
        ssl_stapling on;
        ssl_stapling_responder http://multi.test:$faults/multi/;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate noresolver.chain.crt;
        ssl_certificate_key noresolver.key;
        ssl_stapling on;
        ssl_stapling_responder http://multi.test:$faults/noresolver/;
    }
}
EOF
$t->run;

# nginx's resolver rotates the addresses: over a few refreshes the refused
# one comes first at least once.
ok(wait_for(sub {
	$t->read_file('error.log') =~ /OCSP responder 127\.0\.0\.2:$faults for certificate "[^"]*\/multi\.chain\.crt": connect\(\) to 127\.0\.0\.2:$faults failed \(111: Connection refused\); trying the next address/
}, 30), 'a refused address is logged and the next one tried');
unlike($t->read_file('error.log'), qr/cannot fetch OCSP response for certificate "[^"]*\/multi\.chain\.crt"/,
	'every fetch succeeded on the other address');
ok($t->handshake(port(8443))->{staple}, 'stapled');

like($t->read_file('error.log'), qr/cannot fetch OCSP response for certificate "[^"]*\/noresolver\.chain\.crt" from http:\/\/multi\.test:$faults\/noresolver\/: no resolver defined to resolve multi\.test/,
	'no resolver: one clear line');
my $r = $t->handshake(port(8444));
ok($r->{ok} && !defined $r->{staple}, 'no resolver: TLS served, no staple');

