#!/usr/bin/perl

# Valkey/Redis over TLS (ssl_stapling_store rediss://... ca=FILE): the
# server's certificate (for 127.0.0.1, from a private CA) is verified
# against the CA file given, and a fleet of two instances shares staples
# through it: one request per staple. An instance given another CA
# refuses the server, says so naming the store, and fetches directly.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $N = 3;
my @nginx = map { Test::Nginx::Stapling->new } 1 .. 3;
my $t = $nginx[0];
# 6: the end-of-test checks of the other two instances.
$t->has(qw/http http_ssl socket_ssl/)->has_daemon('openssl')->has_redis;
my %index = map { $nginx[$_] => $_ } 0 .. 2;
# The raw number, in configs (write_file_expand maps 127.0.0.1:8NNN with
# port()); port(server_port(...)) for clients.
sub server_port { 8100 + 10 * $index{$_[0]} + $_[1] }
my $ocsp = port(8080);
my $redis_port = port(8070);
my $password = 'tls-password';
my $dir = $t->testdir;
$t->make_ca('root');
$t->make_ca('other');
$t->make_cert("c$_", ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for 1 .. $N;
# The server's certificate, for its IP address.
$t->run_cmd('openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'
	. ' -subj /CN=redis -keyout redis.key -out redis.csr');
$t->write_file('redis.ext', "subjectAltName=IP:127.0.0.1\n");
$t->run_cmd('openssl x509 -req -in redis.csr -CA root.crt -CAkey root.key -CAcreateserial'
	. ' -days 10 -out redis.crt -extfile redis.ext');
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
# A server built without TLS refuses --tls-port: the test says so.
eval { $t->start_redis($redis_port, $password, tls => ["$dir/redis.crt", "$dir/redis.key"]) };
plan(skip_all => $t->redis_server . " does not start with TLS: "
	. (split /\n/, $t->read_file('redis.log'))[-1]) if $@;
$t->plan(7 + 6);

my $shown = qr/rediss:\/\/127\.0\.0\.1:$redis_port\/0/;
my $start = sub {
	my ($n, $ca) = @_;
	my $servers = $t->tls_servers(server_port($n, 1), map { "c$_" } 1 .. $N);
	$n->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nworker_processes 2;\n"
		. "ssl_stapling_fetch_timeout 3s;\nevents { }\nhttp {\n    %%TEST_GLOBALS_HTTP%%\n"
		. "    ssl_stapling on;\n"
		# 8070: write_file_expand maps it to $redis_port.
		. "    ssl_stapling_store rediss://:$password\@127.0.0.1:8070/0 ca=$dir/$ca.crt;\n"
		. "$servers}\n");
	$n->run(workers => 2);
};
my $all_stapled = sub { $t->all_stapled(map { port(server_port($_[0], $_)) } 1 .. $N) };

$start->($nginx[0], 'root');
ok(wait_for(sub { $all_stapled->($nginx[0]) }, 20), 'first instance: stapled');
ok(wait_for(sub { $t->ocsp_requests == $N }, 10), 'with one request per staple');
$start->($nginx[1], 'root');
ok(wait_for(sub { $all_stapled->($nginx[1]) }, 20), 'second instance: stapled');
like($nginx[1]->read_file('error.log'), qr/$N staple\(s\) read from the store "$shown"/,
	'from Redis over TLS, at its start');
is($t->ocsp_requests, $N, "and none more for the second ($N in all)");
unlike($nginx[0]->read_file('error.log') . $nginx[1]->read_file('error.log'), qr/\[warn\]/,
	'no warning with the right CA');

# Another CA: the server is refused, staples fetched directly.
$start->($nginx[2], 'other');
ok(wait_for(sub { $all_stapled->($nginx[2])
	&& $nginx[2]->read_file('error.log') =~ /\[warn\] [^\n]*"$shown"[^\n]*(?:certificate|UnknownIssuer)/i }, 20),
	'wrong CA: stapled, with a warning naming the store and the certificate refused')
	or diag($nginx[2]->read_file('error.log'));
