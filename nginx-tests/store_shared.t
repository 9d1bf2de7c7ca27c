#!/usr/bin/perl

# A fleet through a shared store (ssl_stapling_store PATH shared): three
# nginx instances (own prefixes, ports and zones) share one store
# directory and staple 20 certificates from one counting responder. With
# "shared", one instance fetches each staple and the others take it from
# the store: at most 22 requests (20, and a margin of 2 for a lease that
# changes hands while a fetch ends), against 60 without. With the
# responder stopped, a fourth instance staples from its first handshake.
# A lease left by a killed instance is taken over after its deadline.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;
use Time::Local ();
use Time::HiRes ();

my $N = 20;
my @nginx = map { Test::Nginx::Stapling->new } 1 .. 4;
my $t = $nginx[0];
# 9: the end-of-test checks of the other three instances.
$t->has(qw/http http_ssl socket_ssl/)->has_daemon('openssl')->plan(24 + 9);
# Each instance its own ports: its status page, its server for certificate $j.
my %index = map { $nginx[$_] => $_ } 0 .. 3;
sub status_port { port(8090 + $index{$_[0]}) }
sub server_port { 8100 + 25 * $index{$_[0]} + $_[1] }
my $ocsp = port(8080);
my $dir = $t->testdir;
$t->make_ca('root');
$t->make_cert("c$_", ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for 1 .. $N;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $conf = sub {
	my ($n, $store) = @_;
	my $servers = $t->tls_servers(server_port($n, 1), map { "c$_" } 1 .. $N);
	return "worker_processes 2;\nssl_stapling_refresh_min_interval 0;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n    ssl_stapling on;\n    ssl_stapling_store $store;\n"
		. "    server {\n        listen 127.0.0.1:" . (8090 + $index{$n}) . ";\n"
		. "        location = /status { ssl_stapling_status refresh; }\n    }\n$servers}\n";
};
my $all_stapled = sub { $t->all_stapled(map { port(server_port($_[0], $_)) } 1 .. $N) };

# Without "shared" (each instance its own store): every instance fetches
# every staple.
my $before = $t->ocsp_requests;
my $start = Time::HiRes::time();
for my $i (0 .. 2) {
	$nginx[$i]->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->($nginx[$i], "$dir/plain$i"));
	$nginx[$i]->run(workers => 2);
}
ok(wait_for(sub { !grep { !$all_stapled->($_) } @nginx[0 .. 2] }, 30), 'not shared: all three instances staple all 20');
diag(sprintf 'not shared: all stapled %.2f s after the first start', Time::HiRes::time() - $start);
my $plain = $t->ocsp_requests - $before;
is($plain, 3 * $N, "not shared: $plain requests for $N staples on 3 instances");
$_->stop for @nginx[0 .. 2];

# Shared: one fetch per staple for the whole fleet.

$before = $t->ocsp_requests;
$start = Time::HiRes::time();
for my $n (@nginx[0 .. 2]) {
	$n->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->($n, "$dir/fleet shared"));
	$n->run(workers => 2);
}
ok(wait_for(sub { !grep { !$all_stapled->($_) } @nginx[0 .. 2] }, 30), 'shared: all three instances staple all 20');
diag(sprintf 'shared: all stapled %.2f s after the first start', Time::HiRes::time() - $start);
my $shared = $t->ocsp_requests - $before;
cmp_ok($shared, '>=', $N, "shared: every staple fetched ($shared requests)");
cmp_ok($shared, '<=', $N + 2, "shared: at most " . ($N + 2) . " requests for 3 instances ($shared)");
# The instances that did not fetch a staple got it from the store: read at
# their start, or taken before a fetch.
my $from_store = 0;
for my $n (@nginx[0 .. 2]) {
	my $log = $n->read_file('error.log');
	$from_store += $1 while $log =~ /(\d+) staple\(s\) read from the store/g;
	$from_store += () = $log =~ /taken from the shared store "[^"]*\/fleet" \(fetched by another instance\)/g;
}
cmp_ok($from_store, '>=', 3 * $N - $shared, "the others got theirs from the store ($from_store)");
my @leases = glob("$dir/fleet/*.lease");
is(scalar @leases, 0, 'no lease file left once the fetches are done');

# A refresh: the first instance fetches (refresh on demand), the second,
# refreshing later, takes the first's staples from the store and sends
# no request. (A response is newer by its thisUpdate, in seconds: wait
# for the next second.)
my $t0 = time;
wait_for(sub { time > $t0 }, 5);
$before = $t->ocsp_requests;
my ($status) = $nginx[0]->http_request(status_port($nginx[0]), '/status?refresh=all', method => 'POST');
is($status, 202, 'first instance: refresh requested');
ok(wait_for(sub { $t->ocsp_requests - $before >= $N }, 20), 'first instance: fetched');
ok(wait_for(sub { !glob("$dir/fleet/*.lease") }, 10), 'its lease files are gone');
my $mark = length $nginx[1]->read_file('error.log');
($status) = $nginx[1]->http_request(status_port($nginx[1]), '/status?refresh=all', method => 'POST');
is($status, 202, 'second instance: refresh requested');
my $taken = sub { scalar(() = substr($nginx[1]->read_file('error.log'), $mark) =~ /taken from the shared store "[^"]*\/fleet" \(fetched by another instance\): good/g) };
ok(wait_for(sub { $taken->() == $N }, 20), "second instance: all $N taken from the store");
is($t->ocsp_requests - $before, $N, 'without a request of its own');

# The store becomes unusable (a file where the directory was): a refresh
# costs warnings and falls back to fetching; the staples stay served.
rename "$dir/fleet", "$dir/fleet.away" or die "rename: $!";
$t->write_file('fleet', "not a directory\n");
$before = $t->ocsp_requests;
($status) = $nginx[2]->http_request(status_port($nginx[2]), '/status?refresh=all', method => 'POST');
is($status, 202, 'store unusable: refresh requested');
ok(wait_for(sub { $t->ocsp_requests - $before >= $N }, 20), 'store unusable: fetched from the responder');
like($nginx[2]->read_file('error.log'), qr/\[warn\] .*cannot take the fetch lease of certificate "[^"]*\/c\d+\.chain\.crt" in the shared store "[^"]*\/fleet": .*; fetching/,
	'with a warning naming the store');
ok($all_stapled->($nginx[2]), 'and every staple still served');
unlink "$dir/fleet";
rename "$dir/fleet.away", "$dir/fleet" or die "rename: $!";

# The responder stops; a fourth instance staples from its first handshake.
$t->stop_daemon('ocsp');
my $fourth = $nginx[3];
$fourth->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->($fourth, "$dir/fleet shared"));
$fourth->run(workers => 2);
ok($all_stapled->($fourth), 'responder down: a new instance staples all 20 from its first handshakes');
like($fourth->read_file('error.log'), qr/$N staple\(s\) read from the store/, 'read from the store at start');
$_->stop for @nginx;

# A lease left by a killed instance: taken over after its deadline.
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $n = $nginx[1];
$n->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $conf->($n, "$dir/killed shared"));
$n->run(workers => 2);
my $id = $t->staple_ids(status_port($n), "c1");
# Stopped once every fetch is done, so that no fetch of this run is cut
# short and nothing it writes lands in the store after it is emptied.
ok(wait_for(sub { $all_stapled->($n) }, 30), 'a fresh instance staples all 20');
$n->stop;
unlink glob("$dir/killed/*");
my $deadline = time + 3;
$t->write_file("killed/$id.lease", "gone.example 4194303 $deadline\n");
$mark = length $n->read_file('error.log');
$n->run(workers => 2);
my $takeover = qr/^(\d+)\/(\d+)\/(\d+) (\d+):(\d+):(\d+) \[notice\] .*certificate "[^"]*\/c1\.chain\.crt": taking over the shared store's fetch lease from gone\.example 4194303, whose deadline passed/m;
ok(wait_for(sub { substr($n->read_file('error.log'), $mark) =~ $takeover }, 15), 'the lease of the killed instance is taken over');
my @at = substr($n->read_file('error.log'), $mark) =~ $takeover;
my $at = Time::Local::timelocal($at[5], $at[4], $at[3], $at[2], $at[1] - 1, $at[0]);
cmp_ok($at, '>=', $deadline, 'when its deadline had passed (by the log line\'s time)');
ok(wait_for(sub { $n->handshake(port(server_port($n, 1)))->{staple} }, 30), 'and the staple fetched')
	or diag(join "\n", grep { /c1\.chain\.crt/ } split /\n/, substr($n->read_file('error.log'), $mark));
my ($until_takeover) = split /taking over the shared store's fetch lease/, substr($n->read_file('error.log'), $mark);
unlike($until_takeover, qr/fetching OCSP response for certificate "[^"]*\/c1\.chain\.crt"/,
	'no fetch of it while the lease was live');

