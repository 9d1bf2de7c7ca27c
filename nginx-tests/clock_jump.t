#!/usr/bin/perl

# The wall clock jumps forward (a VM or laptop resumed from suspend): nginx
# and the responder run under libfaketime (Debian's faketime) reading their
# offset from a file, the monotonic clock untouched, and jump 2 days. The
# staple held is then past its nextUpdate: never served; the first
# handshake that finds it so says it (a notice) and wakes the fetch task,
# so the staple is back after about one bare handshake, not at the fetch
# task's next look (up to 5 s of handshakes without a staple).

use warnings;
use strict;

use Test::More;
use Time::HiRes qw/ time sleep /;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)->has_daemon('openssl');
my $lib = Test::Nginx::Stapling::faketime_lib();
plan(skip_all => "no libfaketime (Debian's faketime)") unless $lib;
$t->plan(7);
my $ocsp = port(8080);
my $clock = $t->testdir . '/clock';
$t->write_file('clock', "+0\n");
$t->make_ca('root');
$t->make_cert('site', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");

# Both read the offset from the file at every call (no cache); timers keep
# the real monotonic clock, as after a real resume.
local $ENV{LD_PRELOAD} = $lib;
local $ENV{FAKETIME_TIMESTAMP_FILE} = $clock;
local $ENV{FAKETIME_NO_CACHE} = 1;
local $ENV{DONT_FAKE_MONOTONIC} = 1;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

# nginx clears the workers' environment but for these.
env LD_PRELOAD;
env FAKETIME_TIMESTAMP_FILE;
env FAKETIME_NO_CACHE;
env DONT_FAKE_MONOTONIC;
worker_processes 1;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
    }
}
EOF
$t->run(workers => 1);
delete @ENV{qw/ LD_PRELOAD FAKETIME_TIMESTAMP_FILE FAKETIME_NO_CACHE DONT_FAKE_MONOTONIC /};

my $before;
ok(wait_for(sub { $before = $t->handshake(port(8443))->{staple} }, 10), 'stapled before the jump');
my $old = $t->staple_validity($before);

$t->write_file('clock', "+2d\n");
my ($bare, $failed, $after) = (0, 0);
my $start = time;
wait_for(sub {
	my $r = $t->handshake(port(8443));
	$failed++, return 0 unless $r->{ok};
	$bare++, return 0 unless $r->{staple};
	$after = $r->{staple};
	return 1;
}, 15);
diag(sprintf 'after the jump: %d handshake(s) without a staple, stapled again after %.2f s',
	$bare, time - $start);
is($failed, 0, 'no handshake failed');
ok($after, 'stapled again after the jump');
isnt($t->staple_validity($after), $old, 'with a new response, not the expired one');
like($t->read_file('error.log'),
	qr/\[notice\] [^\n]*the staple of certificate "[^"]*\/site\.chain\.crt" expired \d+ s ago \(the clock jumped/,
	'the handshake that found it expired said so');
cmp_ok($bare, '>=', 1, 'the expired staple was not served');
cmp_ok($bare, '<=', 3, "about one handshake went out without a staple ($bare)");
