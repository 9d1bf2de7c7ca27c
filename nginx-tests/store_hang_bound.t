#!/usr/bin/perl

# A store that hangs keeps a bounded number of threads: each store call
# runs on a thread of its own with the fetch's deadline, and a call that
# hangs keeps its thread until it ends. Past 8 such threads in a worker,
# the store is skipped with a warning and the staple fetched: ten
# certificates refreshed twice while the store hangs leave the worker with
# at most 8 store threads, every staple fetched and served. Once the store
# answers again, its threads end and it is used again. A test build of the
# module (scripts/build test-hooks) makes reading the store hang while a
# file ".hang" is in it.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $N = 10;
my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->with_hooks_module->plan(11);
my $ocsp = port(8080);
my $store = $t->testdir . '/store';
$t->make_ca('root');
$t->make_cert("c$_", ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for 1 .. $N;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $servers = $t->tls_servers(8101, map { "c$_" } 1 .. $N);
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 1;
ssl_stapling_fetch_timeout 2s;
ssl_stapling_fetch_concurrency $N;
ssl_stapling_refresh_min_interval 0;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    ssl_stapling_store $store shared;
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status refresh; }
    }
$servers}
EOF
$t->run(workers => 1);
my $all_stapled = sub { $t->all_stapled(map { port(8100 + $_) } 1 .. $N) };
ok(wait_for($all_stapled, 20), "all $N stapled");
my ($worker) = $t->workers;
my $threads = sub { $t->read_file("/proc/$worker/status") =~ /^Threads:\s+(\d+)/m ? $1 : 0 };
my $base = $threads->();

# The store hangs; two rounds of refreshes.
$t->write_file('store/.hang', '');
my $most = 0;
for my $round (1, 2) {
	my $before = $t->ocsp_requests;
	my ($status) = $t->http_request(port(8081), '/status?refresh=all', method => 'POST');
	ok(wait_for(sub { $most = $threads->() if $threads->() > $most; $t->ocsp_requests - $before >= $N }, 30),
		"round $round: all $N fetched from the responder while the store hangs");
}
diag("store threads at most: " . ($most - $base));
cmp_ok($most - $base, '<=', 8, 'at most 8 store threads in the worker');
cmp_ok($most - $base, '>=', 1, 'store calls did run on threads');
my $log = $t->read_file('error.log');
like($log, qr/\[warn\] .*the store "[^"]*\/store" did not answer a read for certificate "[^"]*\/c\d+\.chain\.crt" within 2000 ms; fetching/,
	'a call that hung: a warning with the deadline');
like($log, qr/\[warn\] .*the store "[^"]*\/store" is skipped for certificate "[^"]*\/c\d+\.chain\.crt": 8 calls to it are still unanswered, the most a worker makes at once; fetching/,
	'past the bound: skipped with a warning');
ok($all_stapled->(), 'every staple served meanwhile');

# The store answers again: its threads end, and it is used again.
unlink "$store/.hang";
ok(wait_for(sub { $threads->() <= $base }, 10), 'the hung threads end');
my $mark = length $t->read_file('error.log');
my ($status) = $t->http_request(port(8081), '/status?refresh=all', method => 'POST');
ok(wait_for(sub { !glob("$store/*.lease") && (() = substr($t->read_file('error.log'), $mark) =~ /fetched from/g) == $N }, 20),
	'a refresh after it: all fetched');
unlike(substr($t->read_file('error.log'), $mark), qr/the store "[^"]*" (did not answer|is skipped)/,
	'with the store, without a warning');
