#!/usr/bin/perl

# Responder addresses: when a name resolves to several addresses and one
# refuses, the next is tried; a host name without a resolver is one clear
# error line per attempt, never a crash.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my ($dns, $faults) = ($t->port('dns'), $t->port('faults'));
$t->make_ca('root');
$t->make_cert('multi', ca => 'root', type => 'ec');
$t->make_cert('noresolver', ca => 'root', type => 'ec');
$t->ocsp_response('multi.good.der', ca => 'root', certs => ['multi'], ndays => 1);
# 127.0.0.2 has no responder: connections to it are refused
$t->start_dns($dns, 'multi.test' => '127.0.0.2,127.0.0.1');
$t->start_fault_responder($faults);

$t->write_config(<<"EOF");
ssl_stapling_refresh 1s;
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        resolver 127.0.0.1:$dns ipv6=off;
        %%CERT multi%%
        ssl_stapling on;
        ssl_stapling_responder http://multi.test:$faults/multi/;
    }
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        %%CERT noresolver%%
        ssl_stapling on;
        ssl_stapling_responder http://multi.test:$faults/noresolver/;
    }
}
EOF
$t->run;

# nginx's resolver rotates the addresses: over a few refreshes the refused
# one comes first at least once.
ok(wait_for(sub {
	$t->read_log =~ /OCSP responder 127\.0\.0\.2:$faults for certificate "[^"]*\/multi\.chain\.crt": connect\(\) to 127\.0\.0\.2:$faults failed \(111: Connection refused\); trying the next address/
}, 30), 'a refused address is logged and the next one tried');
unlike($t->read_log, qr/cannot fetch OCSP response for certificate "[^"]*\/multi\.chain\.crt"/,
	'every fetch succeeded on the other address');
ok($t->handshake($t->port(0))->{staple}, 'stapled');

like($t->read_log, qr/cannot fetch OCSP response for certificate "[^"]*\/noresolver\.chain\.crt" from http:\/\/multi\.test:$faults\/noresolver\/: no resolver defined to resolve multi\.test/,
	'no resolver: one clear line');
my $r = $t->handshake($t->port(1));
ok($r->{ok} && !defined $r->{staple}, 'no resolver: TLS served, no staple');

$t->done;
