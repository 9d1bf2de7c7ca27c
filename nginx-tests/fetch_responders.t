#!/usr/bin/perl

# A certificate whose Authority Information Access lists several OCSP
# URLs: they are tried in order when one fails, and the log says which one
# answered (nginx, HAProxy and Caddy use only the first). While the first
# answers, the others are never asked.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my ($ocsp, $refused, $faults) = map { $t->port($_) } qw(ocsp refused faults);
$t->make_ca('root');
$t->make_cert('multi', ca => 'root', type => 'ec',
	ocsp => ["http://127.0.0.1:$refused/", "http://127.0.0.1:$ocsp/"]);
$t->make_cert('order', ca => 'root', type => 'ec',
	ocsp => ["http://127.0.0.1:$faults/order/", "http://127.0.0.1:$ocsp/"]);
$t->ocsp_response('order.good.der', ca => 'root', certs => ['order']);
$t->write_file('order.mode', 'good');
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->start_fault_responder($faults);

$t->write_config(<<'EOF');
worker_processes 2;
events { }
http {
    ssl_stapling on;
    server {
        listen 127.0.0.1:%%PORT_multi%% ssl;
        %%CERT multi%%
    }
    server {
        listen 127.0.0.1:%%PORT_order%% ssl;
        %%CERT order%%
    }
    server {
        listen 127.0.0.1:%%PORT_status%%;
        location = /status { ssl_stapling_status; }
    }
}
EOF
$t->run(workers => 2);

# The first URL refuses connections: the second one staples.
ok(wait_for(sub { $t->handshake($t->port('multi'))->{staple} }, 10), 'first responder refusing: stapled');
my $log = $t->read_log;
like($log, qr/\[info\] .*OCSP responder http:\/\/127\.0\.0\.1:$refused\/ for certificate "[^"]*\/multi\.chain\.crt": connect\(\) to 127\.0\.0\.1:$refused failed \(111: Connection refused\); trying the next one, http:\/\/127\.0\.0\.1:$ocsp\//,
	'the refusal is logged, with the next responder');
like($log, qr/OCSP response for certificate "[^"]*\/multi\.chain\.crt" fetched from http:\/\/127\.0\.0\.1:$ocsp\/: good/,
	'the log says which responder answered');
is($t->ocsp_requests, 1, 'the second responder was asked once (for this certificate only)');

# The first URL answers: the second is never asked.
ok(wait_for(sub { ($t->handshake($t->port('order'))->{staple} // '') eq $t->read_file('order.good.der') }, 10),
	'first responder answering: its staple is served');
like($t->read_log, qr/OCSP response for certificate "[^"]*\/order\.chain\.crt" fetched from http:\/\/127\.0\.0\.1:$faults\/order\/: good/,
	'fetched from the first responder');
is($t->read_file('order.count'), "1\n", 'which received one request');
is($t->ocsp_requests, 1, 'and the second responder none');

my $page = $t->status_page($t->port('status'));
my @responders = map { $_->{responder} } @{$page->{certificates} // []};
ok((grep { $_ eq "http://127.0.0.1:$refused/, http://127.0.0.1:$ocsp/" } @responders),
	'the status page lists both responders, in order');

$t->done;
