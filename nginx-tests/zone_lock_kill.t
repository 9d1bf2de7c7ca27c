#!/usr/bin/perl

# A worker killed while it holds the zone lock: the lock is the slab
# pool's own mutex, which the master force-unlocks when a worker dies
# holding it (a spinlock of the module's own would stay locked, and every
# handshake of every worker would spin on it for ever). A test build of the
# module (scripts/build test-hooks) makes a handshake hold the lock; the
# test kills that worker; a handshake that waited on the lock completes,
# and every handshake after it is stapled. With the same build, a panic in
# a directive handler is an error for nginx, not an abort.

use warnings;
use strict;

use Test::More;
use POSIX ();

use Test::Nginx;
use Test::Nginx::Stapling;

# The test build (TEST_NGINX_HOOKS_MODULE) must be built for the nginx
# under test (TEST_NGINX_BINARY).
my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->with_hooks_module->plan(8);
my $d = $t->testdir;
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
}
EOF
$t->run(workers => 2);
my $staple = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
ok($staple, 'stapled');

# The next handshake's worker takes the lock and keeps it (the workers run
# as another user when the test runs as root: a directory they can write).
mkdir "$d/test-hooks";
chmod 0777, "$d/test-hooks";
$t->write_file('test-hooks/hold-zone-lock', '');
my $holder_client = fork // die "fork: $!";
if (!$holder_client) {
	$t->handshake(port(8443));
	POSIX::_exit(0);
}
my $holder = wait_for(sub { -s "$d/test-hooks/zone-lock-held-by" && $t->read_file('test-hooks/zone-lock-held-by') + 0 }, 10);
ok($holder, 'a worker holds the zone lock');

# A handshake meanwhile: whichever worker takes it waits for the lock (or
# is the holder): it must end once the holder is gone, with a staple.
pipe(my $rd, my $wr) or die "pipe: $!";
my $waiter = fork // die "fork: $!";
if (!$waiter) {
	close $rd;
	my $r = $t->handshake(port(8443));
	print $wr defined $r->{staple} ? "stapled\n" : ($r->{ok} ? "unstapled\n" : "failed\n");
	close $wr;
	POSIX::_exit(0);
}
close $wr;

# The worker killed on purpose, and the lock it held: [alert]s of nginx's.
$t->todo_alerts->expect_log(qr/\[alert\] .*worker process $holder exited on signal 9/);
$t->expect_log(qr/\[alert\] .*shared memory zone "ssl_stapling" was locked by $holder/);
kill 'KILL', $holder;
ok(wait_for(sub { $t->read_file('error.log') =~ /shared memory zone "ssl_stapling" was locked by $holder/ }, 20),
	'the master force-unlocks the zone the dead worker held');
waitpid($holder_client, 0);

my $answer = '';
{
	local $SIG{ALRM} = sub { die "timeout\n" };
	alarm 60;
	$answer = eval { scalar <$rd> } // 'no answer within 60 s';
	alarm 0;
}
waitpid($waiter, 0);
chomp $answer;
like($answer, qr/^(stapled|failed)$/, "the handshake made while the lock was held ends ($answer)");
ok(wait_for(sub { $t->workers == 2 }, 10), 'the master started a new worker');
my $stapled = grep { defined $t->handshake(port(8443))->{staple} } 1 .. 20;
is($stapled, 20, 'every handshake after it, on both workers, is stapled');
$t->stop;

# A panic in a directive handler (a bug) is an error nginx reports, not an
# unwinding into nginx's C code (which would abort it).
$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\nssl_stapling_fetch_timeout test-hooks-panic;\nevents { }\n");
my ($rc, $out) = $t->test_config;
is($rc, 1, 'a panicking directive handler: nginx -t exits with 1, not a signal');
like($out, qr/\[emerg\] .*ssl_stapling_fetch_timeout|configuration file .* test failed/,
	'and reports the configuration as failed');
$t->expect_log(qr/\[emerg\]/);

