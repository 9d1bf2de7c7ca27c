#!/usr/bin/perl

# A fleet on Valkey/Redis (ssl_stapling_store redis://...): Debian's
# redis-server with a password, three nginx instances (own prefixes, ports
# and zones), 20 certificates, one counting responder. One fetch per staple
# for the fleet: 20 requests. With the responder stopped, a fourth instance
# staples from its first handshakes (read from Redis at start). Redis
# stopped: staples still served, fetched directly with warnings naming the
# store; Redis back: sharing resumes without a reload. A lease left by a
# dead instance ends by Redis's clock and is taken; leases that never end
# or end an hour ahead are void. A wrong password is a warning, and the
# staples are fetched. Another certificate's response or garbage in Redis
# is never served; Redis out of memory, hung or holding another type of
# value is a warning and a direct fetch.
# The password is never in the log.

use warnings;
use strict;

use Test::More;
use Time::HiRes qw/ time /;

use Test::Nginx;
use Test::Nginx::Stapling;

my $N = 20;
my @nginx = map { Test::Nginx::Stapling->new } 1 .. 4;
my $t = $nginx[0];
# 9: the end-of-test checks of the other three instances.
$t->has(qw/http http_ssl socket_ssl/)->has_daemon('openssl')->has_redis->plan(40 + 9);
my %index = map { $nginx[$_] => $_ } 0 .. 3;
sub status_port { port(8090 + $index{$_[0]}) }
# Its 80 servers in another range of nginx's harness (port() picks a free
# port within the 500 around the one asked for) than store_shared.t's 80,
# which prove -j4 may run beside it.
sub server_port { 8600 + 25 * $index{$_[0]} + $_[1] }
my $ocsp = port(8080);
my $redis_port = port(8070);
my $password = 'pw-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 16;
my $dir = $t->testdir;
$t->make_ca('root');
$t->make_cert("c$_", ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for 1 .. $N;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->start_redis($redis_port, $password);
diag('server: ' . $t->redis_server . ' ' . ($t->redis('INFO', 'server') =~ /^(?:valkey|redis)_version:(\S+)/m ? $1 : '?'));

# In the configuration, the raw number: write_file_expand maps
# 127.0.0.1:8NNN with port() itself (port() again would map it twice).
my $url = "redis://:$password\@127.0.0.1:8070/0";
my $shown = qr/redis:\/\/127\.0\.0\.1:$redis_port\/0/;
my $conf = sub {
	my ($n, $store) = @_;
	my $servers = $t->tls_servers(server_port($n, 1), map { "c$_" } 1 .. $N);
	return "%%TEST_GLOBALS%%\ndaemon off;\nworker_processes 2;\nssl_stapling_fetch_timeout 3s;\n"
		. "ssl_stapling_refresh_min_interval 0;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n"
		. "    ssl_stapling on;\n    ssl_stapling_store $store;\n"
		. "    server {\n        listen 127.0.0.1:" . (8090 + $index{$n}) . ";\n"
		. "        location = /status { ssl_stapling_status refresh; }\n    }\n$servers}\n";
};
my $start = sub {
	my ($n, $store) = @_;
	$n->write_file_expand('nginx.conf', $conf->($n, $store));
	$n->run(workers => 2);
};
my $all_stapled = sub { $t->all_stapled(map { port(server_port($_[0], $_)) } 1 .. $N) };
my $refresh = sub {
	my ($n, $what) = @_;
	my ($status) = $n->http_request(status_port($n), "/status?refresh=" . ($what // 'all'), method => 'POST');
	return $status;
};
my $since = sub { my ($n, $mark) = @_; substr($n->read_file('error.log'), $mark) };

# Three instances, the second with its password from a file.
my $before = $t->ocsp_requests;
my $t0 = time;
$start->($nginx[0], $url);
$nginx[1]->write_file('redis.password', "$password\n");
$start->($nginx[1], "redis://127.0.0.1:8070/0 password_file=redis.password");
$start->($nginx[2], "$url prefix=ssl_stapling:");
ok(wait_for(sub { !grep { !$all_stapled->($_) } @nginx[0 .. 2] }, 30), 'three instances staple all 20');
diag(sprintf 'redis: all stapled %.2f s after the first start', time - $t0);
is($t->ocsp_requests - $before, $N, "one request per staple for the fleet ($N)");
my $taken = 0;
for my $n (@nginx[0 .. 2]) {
	my $log = $n->read_file('error.log');
	$taken += $1 while $log =~ /(\d+) staple\(s\) read from the store "$shown"/g;
	$taken += () = $log =~ /taken from the shared store "$shown" \(fetched by another instance\)/g;
}
cmp_ok($taken, '>=', 2 * $N, "the others took theirs from Redis, at start or before a fetch ($taken)");
my @keys = split /\n/, $t->redis('--scan', '--pattern', 'ssl_stapling:*');
is(scalar(grep { /^ssl_stapling:staple:[0-9a-f]{64}$/ } @keys), $N, "$N staples in Redis");
is(scalar(grep { /lease/ } @keys), 0, 'no lease left once the fetches are done');
my $id1 = $t->staple_ids(status_port($nginx[0]), 'c1');
my $ttl = $t->redis('TTL', "ssl_stapling:staple:$id1");
ok($ttl > 86400 - 600 && $ttl <= 86400, "a staple's time to live ends at its nextUpdate ($ttl s)");

# A staple is taken from Redis only when it is newer (its thisUpdate, in
# whole seconds) than the one held: before a refresh whose staples another
# instance must take, the clock moves past the second of the last fetch.
my $next_second = sub { my $s = time; wait_for(sub { time > int($s) + 1 }, 5) };

# A refresh: the first instance fetches, the second takes its staples.
$next_second->();
$before = $t->ocsp_requests;
is($refresh->($nginx[0]), 202, 'first instance: refresh requested');
ok(wait_for(sub { $t->ocsp_requests - $before >= $N }, 20), 'first instance: fetched');
ok(wait_for(sub { !grep { /lease/ } split /\n/, $t->redis('--scan', '--pattern', 'ssl_stapling:*') }, 10),
	'its leases given back');
my $mark = length $nginx[1]->read_file('error.log');
is($refresh->($nginx[1]), 202, 'second instance: refresh requested');
ok(wait_for(sub { (() = $since->($nginx[1], $mark) =~ /taken from the shared store "$shown"/g) == $N }, 20),
	"second instance: all $N taken from Redis");
is($t->ocsp_requests - $before, $N, 'without a request of its own');

# The responder stops; a fourth instance staples from its first handshakes.
$t->stop_daemon('ocsp');
my $fourth = $nginx[3];
$start->($fourth, $url);
ok($all_stapled->($fourth), 'responder down: a new instance staples all 20 from its first handshakes');
like($fourth->read_file('error.log'), qr/$N staple\(s\) read from the store "$shown"/, 'read from Redis at start');
$fourth->stop;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

# Redis stops: staples served, refreshes fetched directly with warnings.
$t->stop_daemon('redis');
$before = $t->ocsp_requests;
$mark = length $nginx[2]->read_file('error.log');
is($refresh->($nginx[2]), 202, 'Redis down: refresh requested');
ok(wait_for(sub { $t->ocsp_requests - $before >= $N }, 30), 'Redis down: fetched from the responder');
like($since->($nginx[2], $mark), qr/\[warn\] .*cannot take the fetch lease of certificate "[^"]*\/c\d+\.chain\.crt" in the shared store "$shown": .*; fetching/,
	'with warnings naming the store');
ok($all_stapled->($nginx[2]), 'and every staple still served');

# Redis back (empty): sharing resumes without a reload.
$t->start_redis($redis_port, $password);
$next_second->();
$before = $t->ocsp_requests;
is($refresh->($nginx[0]), 202, 'Redis back: refresh requested');
ok(wait_for(sub { $t->ocsp_requests - $before >= $N
	&& !grep { /lease/ } split /\n/, $t->redis('--scan', '--pattern', 'ssl_stapling:*') }, 30),
	'Redis back: the first instance fetched');
$mark = length $nginx[1]->read_file('error.log');
is($refresh->($nginx[1]), 202, 'the second refreshes');
ok(wait_for(sub { (() = $since->($nginx[1], $mark) =~ /taken from the shared store "$shown"/g) == $N }, 30),
	'and takes every staple from Redis again');
is($t->ocsp_requests - $before, $N, 'one request per staple again');

# A lease left by a dead instance ends by Redis's clock.
my $n = $nginx[1];
$t->redis('SET', "ssl_stapling:lease:$id1", 'gone.example 4194303', 'PX', 3000);
my $set_at = time;
$before = $t->ocsp_requests;
$mark = length $n->read_file('error.log');
is($refresh->($n, $id1), 202, 'refresh with a dead instance\'s lease in Redis');
ok(wait_for(sub { $since->($n, $mark) =~ /fetching OCSP response for certificate "[^"]*\/c1\.chain\.crt"|taken from the shared store "$shown"/ }, 20),
	'the staple refreshed once the lease ended');
cmp_ok(time - $set_at, '>=', 2.5, 'not before the lease ended');

# Leases no instance of this module writes: void, with a warning.
$t->redis('SET', "ssl_stapling:lease:$id1", 'forever.example 1');
my $id2 = $t->staple_ids(status_port($n), 'c2');
$t->redis('SET', "ssl_stapling:lease:$id2", 'ahead.example 2', 'PX', 3600 * 1000);
$mark = length $n->read_file('error.log');
$refresh->($n, $id1);
$refresh->($n, $id2);
ok(wait_for(sub { $since->($n, $mark) =~ /\[warn\] .*c1\.chain\.crt": the lease key "ssl_stapling:lease:$id1" in $shown is not a lease: the lease of forever\.example 1 never expires; replaced/ }, 10),
	'a lease that never ends: void, a warning')
	or diag($since->($n, $mark));
ok(wait_for(sub { $since->($n, $mark) =~ /\[warn\] .*c2\.chain\.crt": the lease key "ssl_stapling:lease:$id2" in $shown of ahead\.example 2 ends at [\d.]+, 3\d\d\d s from now, further ahead than any lease/ }, 10),
	'a lease an hour ahead: void, a warning');

# Another certificate's response and garbage in Redis: never served.
my $c2 = $t->ocsp_response('c2.resp', ca => 'root', certs => ['c2']);
my $id3 = $t->staple_ids(status_port($n), 'c3');
$t->redis('SET', "ssl_stapling:staple:$id1", \$t->read_file($c2));
$t->redis('SET', "ssl_stapling:staple:$id3", \"garbage");
$mark = length $n->read_file('error.log');
$refresh->($n, $id1);
$refresh->($n, $id3);
ok(wait_for(sub { $since->($n, $mark) =~ /\[warn\] .*the staple in key "ssl_stapling:staple:$id1" in $shown for certificate "[^"]*\/c1\.chain\.crt" is not served: [^\n]*it is for another certificate/
	&& $since->($n, $mark) =~ /\[warn\] .*the staple in key "ssl_stapling:staple:$id3" in $shown for certificate "[^"]*\/c3\.chain\.crt" is not served: not a DER-encoded OCSP response/ }, 10),
	'another certificate\'s response and garbage: warnings');
my %serial = map { $_ => $t->serial("c$_") } 1, 3;
ok(wait_for(sub {
	my @s1 = $n->staple_serials($n->handshake(port(server_port($n, 1)))->{staple});
	my @s3 = $n->staple_serials($n->handshake(port(server_port($n, 3)))->{staple});
	"@s1" eq $serial{1} && "@s3" eq $serial{3};
}, 10), 'each certificate stapled with its own response');

# Redis out of memory: warnings naming it, the staple fetched and served.
# (Its staple gone from Redis first, so that it is fetched and written.)
$t->redis('DEL', "ssl_stapling:staple:$id1");
$t->redis('CONFIG', 'SET', 'maxmemory', '1');
$before = $t->ocsp_requests;
$mark = length $nginx[0]->read_file('error.log');
$refresh->($nginx[0], $id1);
ok(wait_for(sub { $t->ocsp_requests > $before
	&& $since->($nginx[0], $mark) =~ /\[warn\] [^\n]*c1\.chain\.crt"[^\n]*$shown[^\n]*OOM/ }, 10),
	'Redis out of memory: a warning, the staple fetched directly');
ok($nginx[0]->handshake(port(server_port($nginx[0], 1)))->{staple}, 'and served');
$t->redis('CONFIG', 'SET', 'maxmemory', '0');

# Another type of value where a staple should be: a warning, fetched, and
# the staple written over it.
$t->redis('DEL', "ssl_stapling:staple:$id3");
$t->redis('SADD', "ssl_stapling:staple:$id3", 'x');
$before = $t->ocsp_requests;
$mark = length $nginx[0]->read_file('error.log');
$refresh->($nginx[0], $id3);
ok(wait_for(sub { $t->ocsp_requests > $before
	&& $since->($nginx[0], $mark) =~ /\[warn\] [^\n]*cannot read key "ssl_stapling:staple:$id3" in $shown for certificate "[^"]*\/c3\.chain\.crt": [^\n]*WRONGTYPE/ }, 10),
	'a set where a staple should be: a warning, the staple fetched');
ok(wait_for(sub { $t->redis('TYPE', "ssl_stapling:staple:$id3") eq 'string' }, 10), 'and written over it');

# Redis hangs (stopped by SIGSTOP: connections are accepted, nothing is
# answered): the store calls give up at the fetch timeout, with a
# warning, and the staple is fetched; handshakes go on meanwhile.
kill 'STOP', $t->daemon_pid('redis');
$before = $t->ocsp_requests;
$mark = length $nginx[0]->read_file('error.log');
$refresh->($nginx[0], $id1);
ok(wait_for(sub { $t->ocsp_requests > $before
	&& $since->($nginx[0], $mark) =~ /\[warn\] [^\n]*the store "$shown" did not answer a read for certificate "[^"]*\/c1\.chain\.crt" within 3000 ms; fetching/ }, 15),
	'Redis hung: a warning with the deadline, the staple fetched');
ok($nginx[0]->handshake(port(server_port($nginx[0], 1)))->{staple}, 'and served meanwhile');
kill 'CONT', $t->daemon_pid('redis');
$_->stop for @nginx[0 .. 2];

# A wrong password: a warning naming the store, staples fetched directly.
my $wrong = $nginx[3];
$before = $t->ocsp_requests;
$start->($wrong, "redis://:wrong-password\@127.0.0.1:8070/0");
ok(wait_for(sub { $all_stapled->($wrong) }, 30), 'wrong password: all 20 stapled');
like($wrong->read_file('error.log'), qr/\[warn\] .*"$shown".*(WRONGPASS|invalid username-password|AuthenticationFailed)/i,
	'with a warning naming the store and the refusal');
is($t->ocsp_requests - $before, $N, 'fetched directly');
$wrong->stop;

my $logs = join '', map { $_->read_file('error.log') } @nginx;
unlike($logs, qr/\Q$password\E|wrong-password/, 'no password in any log');
