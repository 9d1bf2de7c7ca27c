#!/usr/bin/perl

# A certificate whose Authority Information Access lists several OCSP
# URLs: they are tried in order when one fails, and the log says which one
# answered (nginx, HAProxy and Caddy use only the first). While the first
# answers, the others are never asked.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(9);
# Nothing listens on the port $refused holds.
my ($ocsp, $refused, $faults) = (port(8090), port(8091), port(8092));
$t->make_ca('root');
$t->make_cert('multi', ca => 'root', type => 'ec',
	ocsp => ["http://127.0.0.1:$refused/", "http://127.0.0.1:$ocsp/"]);
$t->make_cert('order', ca => 'root', type => 'ec',
	ocsp => ["http://127.0.0.1:$faults/order/", "http://127.0.0.1:$ocsp/"]);
$t->ocsp_response('order.good.der', ca => 'root', certs => ['order']);
$t->write_file('order.mode', 'good');
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->start_fault_responder($faults);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8080 ssl;
        ssl_certificate multi.chain.crt;
        ssl_certificate_key multi.key;
    }
    server {
        listen 127.0.0.1:8081 ssl;
        ssl_certificate order.chain.crt;
        ssl_certificate_key order.key;
    }
    server {
        listen 127.0.0.1:8082;
        location = /status { ssl_stapling_status; }
    }
}
EOF
$t->run(workers => 2);

# The first URL refuses connections: the second one staples.
ok(wait_for(sub { $t->handshake(port(8080))->{staple} }, 10), 'first responder refusing: stapled');
my $log = $t->read_file('error.log');
like($log, qr/\[info\] .*OCSP responder http:\/\/127\.0\.0\.1:$refused\/ for certificate "[^"]*\/multi\.chain\.crt": connect\(\) to 127\.0\.0\.1:$refused failed \(111: Connection refused\); trying the next one, http:\/\/127\.0\.0\.1:$ocsp\//,
	'the refusal is logged, with the next responder');
like($log, qr/OCSP response for certificate "[^"]*\/multi\.chain\.crt" fetched from http:\/\/127\.0\.0\.1:$ocsp\/: good/,
	'the log says which responder answered');
is($t->ocsp_requests, 1, 'the second responder was asked once (for this certificate only)');

# The first URL answers: the second is never asked.
ok(wait_for(sub { ($t->handshake(port(8081))->{staple} // '') eq $t->read_file('order.good.der') }, 10),
	'first responder answering: its staple is served');
like($t->read_file('error.log'), qr/OCSP response for certificate "[^"]*\/order\.chain\.crt" fetched from http:\/\/127\.0\.0\.1:$faults\/order\/: good/,
	'fetched from the first responder');
is($t->read_file('order.count'), "1\n", 'which received one request');
is($t->ocsp_requests, 1, 'and the second responder none');

my $page = $t->status_page(port(8082));
my @responders = map { $_->{responder} } @{$page->{certificates} // []};
ok((grep { $_ eq "http://127.0.0.1:$refused/, http://127.0.0.1:$ocsp/" } @responders),
	'the status page lists both responders, in order');

