#!/usr/bin/perl

# Lease files in a shared store that no live instance of this module wrote
# (ssl_stapling_store PATH shared): a deadline decades or an hour ahead (a
# host whose clock is off, a bug, a hostile writer), a FIFO, a directory, a
# symbolic link to /dev/zero, 1 MB of garbage. Each is taken over with a
# warning naming the file and what it is, and its staple fetched within the
# fetch timeout plus a few seconds; nothing is left in the directory. A
# deadline with a fraction parses: the lease is waited for, then taken
# over with a notice.

use warnings;
use strict;

use Test::More;
use POSIX ();

use Test::Nginx;
use Test::Nginx::Stapling;

my @cases = qw/ far hour fifo dir link garbage fraction /;
my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(4 + 3 * @cases);
my $ocsp = port(8080);
my $dir = $t->testdir;
my $store = "$dir/store";
$t->make_ca('root');
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for @cases;

my $servers = $t->tls_servers(8100, @cases);
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 1;
ssl_stapling_fetch_timeout 2s;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
    ssl_stapling_store $store shared;
    server {
        listen 127.0.0.1:8081;
        location = /status { ssl_stapling_status; }
    }
$servers}
EOF

# The staple ids (the lease files' names) from a first run, responder down.
$t->run(workers => 1);
my %id = map { $_ => $t->staple_ids(port(8081), $_) } @cases;
$t->stop;
unlink glob "$store/*";

sub put { open my $f, '>', $_[0] or die "$_[0]: $!\n"; binmode $f; print $f $_[1]; close $f }

my $now = time;
my %lease = map { $_ => "$store/$id{$_}.lease" } @cases;
put($lease{far}, "otherhost 4242 " . ($now + 75 * 365 * 86400) . "\n");
put($lease{hour}, "otherhost 4242 " . ($now + 3600) . "\n");
POSIX::mkfifo($lease{fifo}, 0644) or die "mkfifo: $!";
mkdir $lease{dir} or die "mkdir: $!";
put("$lease{dir}/inside", "x");
symlink '/dev/zero', $lease{link} or die "symlink: $!";
put($lease{garbage}, "\xff" x (1 << 20));
my $fraction = $now + 6;
put($lease{fraction}, "otherhost 4242 $fraction.5\n");
# The workers own the store (the module made it theirs: nobody, or the
# user nginx was built with, when the tests run as root): so too what was
# put in it here.
my ($uid, $gid) = (stat $store)[4, 5];
system('chown', '-hR', "$uid:$gid", $store) == 0 or die "chown\n" if $> == 0;

$t->start_ocsp_responder(ca => 'root', port => $ocsp);
$t->run(workers => 1);

my %said = (
	far => qr/the lease file "\Q$lease{far}\E" of otherhost 4242 ends at \d+, \d+ s from now, further ahead than any lease this module writes \(\d+ s\)[^\n]*taken over/,
	hour => qr/the lease file "\Q$lease{hour}\E" of otherhost 4242 ends at \d+, 3\d\d\d s from now, further ahead than any lease this module writes/,
	fifo => qr/the lease file "\Q$lease{fifo}\E" is not a lease: it is a FIFO, not a regular file; replaced/,
	dir => qr/the lease file "\Q$lease{dir}\E" is not a lease: it is a directory, not a regular file; replaced/,
	link => qr/the lease file "\Q$lease{link}\E" is not a lease: it is a symbolic link, not followed; replaced/,
	garbage => qr/the lease file "\Q$lease{garbage}\E" is not a lease: it is 1048576 bytes, larger than any file the store reads there \(512 bytes\); replaced/,
	fraction => qr/taking over the shared store's fetch lease from otherhost 4242, whose deadline passed/,
);
# One deadline for all, from the start: the fetch timeout (2 s), the
# fraction's lease (6.5 s), and a generous margin for a loaded machine.
my $deadline = time + 30;
for my $i (0 .. $#cases) {
	my $c = $cases[$i];
	my $last;
	ok(wait_for(sub { $last = $t->handshake(port(8100 + $i)); $last->{staple} },
		($deadline - time) > 1 ? $deadline - time : 1),
		"$c: stapled within the fetch timeout and a few seconds")
		or diag("$c: last handshake: " . ($last->{ok} ? 'no staple' : "failed: $last->{error}")
			. '; on the status page: ' . join(', ', map { "$_->{source} $_->{status} valid=$_->{valid}"
				. ($_->{last_fetch} ? " last fetch $_->{last_fetch}{result}" . ($_->{last_fetch}{error} ? ": $_->{last_fetch}{error}" : '') : '') }
				grep { $_->{id} eq $id{$c} } @{($t->status_page(port(8081)) // {})->{certificates} // []}));
	my $level = $c eq 'fraction' ? 'notice' : 'warn';
	like($t->read_file('error.log'), qr/\[$level\] [^\n]*certificate "[^"]*\/$c\.chain\.crt": [^\n]*$said{$c}/,
		"$c: a $level naming the lease file and what it was");
}
ok(time >= $fraction, 'fraction: its lease was waited for until its deadline');
ok(wait_for(sub { $t->ocsp_requests == @cases }, 10), 'one request per staple');
ok(wait_for(sub { !grep { !/\.der$/ && !m{/\.seal-key$} } glob("$store/* $store/.*[!.]*") }, 10),
	'nothing but staples and the store\'s key left in the store')
	or diag(join ' ', glob("$store/* $store/.*[!.]*"));
for my $c (@cases) {
	ok(-f "$store/$id{$c}.der" && !-e $lease{$c}, "$c: its staple in the store, no lease");
}
is($t->ocsp_requests, scalar @cases, 'no more requests');
