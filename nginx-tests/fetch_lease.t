#!/usr/bin/perl

# A worker killed (SIGKILL) while it holds a certificate's fetch lease:
# another worker takes the lease over and fetches.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(7);
my $faults = port(8080);
$t->make_ca('root');
$t->make_cert('lease', ca => 'root', type => 'ec');
$t->ocsp_response('lease.good.der', ca => 'root', certs => ['lease']);
$t->write_file('lease.mode', 'hang');
$t->start_fault_responder($faults);

$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_fetch_timeout 60s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate lease.chain.crt;
        ssl_certificate_key lease.key;
        ssl_stapling on;
        ssl_stapling_responder http://127.0.0.1:8080/lease/;
    }
}
EOF
$t->run(workers => 2);

my $fetching = qr/\[info\] (\d+)#\d+: ssl_stapling: fetching OCSP response for certificate "[^"]*\/lease\.chain\.crt"/;
my $requests = sub { my $c = $t->read_file('lease.count'); scalar(() = $c =~ /\n/g) };
ok(wait_for(sub { $t->read_file('error.log') =~ $fetching && $requests->() >= 1 }, 20),
	'a worker started fetching, the responder holds its request');
my ($holder) = $t->read_file('error.log') =~ $fetching;

$t->write_file('lease.mode', 'good');
kill 'KILL', $holder;
# The worker killed on purpose is an [alert] of nginx's.
$t->todo_alerts->expect_log(qr/\[alert\] .*worker process $holder exited on signal 9/);

my $fetched = qr/\[info\] (\d+)#\d+: ssl_stapling: OCSP response for certificate "[^"]*\/lease\.chain\.crt" fetched/;
ok(wait_for(sub { $t->read_file('error.log') =~ $fetched }, 20), 'the lease was taken over and the fetch done');
my ($by) = $t->read_file('error.log') =~ $fetched;
isnt($by, $holder, 'by another worker');
like($t->read_file('error.log'), qr/\[notice\] $by#\d+: ssl_stapling: certificate "[^"]*\/lease\.chain\.crt": taking over the fetch from worker $holder, which exited/,
	'which said it took the fetch over from the killed worker');
ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 20), 'stapled');

# Over the whole run, while the killed worker held the lease for a minute
# (its fetch hung), the other worker never fetched: one fetch each, two
# requests in all.
my @fetchers = $t->read_file('error.log') =~ /$fetching/g;
is("@fetchers", "$holder $by", 'one fetch by the lease holder, one by the worker that took it over');
is($requests->(), 2, 'the responder received two requests');

