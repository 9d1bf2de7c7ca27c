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
        %%CERT lease%%
        ssl_stapling on;
        ssl_stapling_responder http://127.0.0.1:$faults/lease/;
    }
}
EOF
$t->run(workers => 2);

my $fetching = qr/\[info\] (\d+)#\d+: ssl_stapling: fetching OCSP response for certificate "[^"]*\/lease\.chain\.crt"/;
my $requests = sub { my $c = $t->read_file('lease.count'); scalar(() = $c =~ /\n/g) };
ok(wait_for(sub { $t->read_log =~ $fetching && $requests->() >= 1 }, 5),
	'a worker started fetching, the responder holds its request');
my ($holder) = $t->read_log =~ $fetching;

$t->write_file('lease.mode', 'good');
kill 'KILL', $holder;
$t->expect_log(qr/\[alert\] .*worker process $holder exited on signal 9/);

my $fetched = qr/\[info\] (\d+)#\d+: ssl_stapling: OCSP response for certificate "[^"]*\/lease\.chain\.crt" fetched/;
ok(wait_for(sub { $t->read_log =~ $fetched }, 20), 'the lease was taken over and the fetch done');
my ($by) = $t->read_log =~ $fetched;
isnt($by, $holder, 'by another worker');
like($t->read_log, qr/\[notice\] $by#\d+: ssl_stapling: certificate "[^"]*\/lease\.chain\.crt": taking over the fetch from worker $holder, which exited/,
	'which said it took the fetch over from the killed worker');
ok(wait_for(sub { $t->handshake($t->port(0))->{staple} }, 5), 'stapled');

# Over the whole run, while the killed worker held the lease for a minute
# (its fetch hung), the other worker never fetched: one fetch each, two
# requests in all.
my @fetchers = $t->read_log =~ /$fetching/g;
is("@fetchers", "$holder $by", 'one fetch by the lease holder, one by the worker that took it over');
is($requests->(), 2, 'the responder received two requests');

$t->done;
