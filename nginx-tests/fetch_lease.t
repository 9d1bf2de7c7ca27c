#!/usr/bin/perl

# A worker killed (SIGKILL) while it holds a certificate's fetch lease:
# another worker takes the lease over and fetches.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my $faults = $t->port('faults');
$t->make_ca('root');
$t->make_cert('lease', ca => 'root', type => 'ec');
$t->ocsp_response('lease.good.der', ca => 'root', certs => ['lease']);
$t->write_file('lease.mode', 'hang');
$t->start_fault_responder($faults);

$t->write_config(<<"EOF");
worker_processes 2;
ssl_stapling_fetch_timeout 60s;
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        ssl_certificate lease.chain.crt;
        ssl_certificate_key lease.key;
        ssl_stapling on;
        ssl_stapling_responder http://127.0.0.1:$faults/lease/;
    }
}
EOF
$t->run(workers => 2);

my $fetching = qr/\[info\] (\d+)#\d+: ssl_stapling: fetching OCSP response for certificate "[^"]*\/lease\.chain\.crt"/;
ok(wait_for(sub { $t->read_log =~ $fetching }, 5), 'a worker started fetching');
my ($holder) = $t->read_log =~ $fetching;
my @fetchers = $t->read_log =~ /$fetching/g;
is(scalar @fetchers, 1, 'exactly one worker fetches');

$t->write_file('lease.mode', 'good');
kill 'KILL', $holder;
$t->expect_log(qr/\[alert\] .*worker process $holder exited on signal 9/);

my $fetched = qr/\[info\] (\d+)#\d+: ssl_stapling: OCSP response for certificate "[^"]*\/lease\.chain\.crt" fetched/;
ok(wait_for(sub { $t->read_log =~ $fetched }, 20), 'the lease was taken over and the fetch done');
my ($by) = $t->read_log =~ $fetched;
isnt($by, $holder, 'by another worker');
ok(wait_for(sub { $t->handshake($t->port(0))->{staple} }, 5), 'stapled');

$t->done;
