#!/usr/bin/perl

# The store directory belongs to the worker user, and the master, as root,
# reads it at start and reload: nothing in it may hold nginx up or make
# root read what it should not. A FIFO, a symbolic link (to /dev/zero, or
# to a valid response elsewhere) and a 1 GB file are each one warning
# naming the file and what it is, and are skipped; start and reload go on;
# the workers' own writes replace a link, never write through it.

use warnings;
use strict;

use Test::More;
use POSIX qw(mkfifo);
use Time::HiRes qw(time);

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(13);
my $d = $t->testdir;
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling_store store;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8444;
        location /status {
            ssl_stapling_status;
        }
    }
}
EOF

# The staple's id, from a first start (the responder is not up: nothing
# is written yet).
$t->run(workers => 2);
my $id = $t->staple_ids(port(8444), 'site');
$t->stop;

# A valid response for the certificate, outside the store, and links to it.
$t->ocsp_response('elsewhere.der', ca => 'root', certs => ['site']);
my $elsewhere = $t->read_file('elsewhere.der');
my ($fifo, $zero, $big) = map { $_ x 32 } qw(aa bb dd);
mkfifo("$d/store/$fifo.der", 0600) or die "mkfifo: $!";
symlink('/dev/zero', "$d/store/$zero.der") or die "symlink: $!";
symlink("$d/elsewhere.der", "$d/store/$id.der") or die "symlink: $!";
open my $fh, '>', "$d/store/$big.der" or die "big: $!";
truncate $fh, 1 << 30 or die "truncate: $!";
close $fh;

# Start with the responder down. A hang here (the FIFO read as root) would
# be caught by the alarm, not by a test that never ends.
my $start = time;
{
	local $SIG{ALRM} = sub { die "nginx did not start within 60 s\n" };
	alarm 60;
	$t->run(workers => 2);
	alarm 0;
}
diag(sprintf 'start with a FIFO, two links and a 1 GB file in the store: %.2f s', time - $start);
ok(1, 'nginx starts with a FIFO, links and a 1 GB file in its store');
my $log = $t->read_file('error.log');
like($log, qr/\[warn\] .*cannot read "[^"]*\Q$fifo\E\.der": it is a FIFO, not a regular file/, 'the FIFO: one warning naming it');
like($log, qr/\[warn\] .*cannot read "[^"]*\Q$zero\E\.der": it is a symbolic link, not followed/, 'the link to /dev/zero: not followed');
like($log, qr/\[warn\] .*cannot read "[^"]*\Q$id\E\.der": it is a symbolic link, not followed/, 'the link named as the staple: not followed');
like($log, qr/\[warn\] .*cannot read "[^"]*\Q$big\E\.der": it is 1073741824 bytes, larger than/, 'the 1 GB file: refused by its size, unread');
like($log, qr/took over 1 certificate\(s\), 1 staple\(s\), .* 0 from the store/, 'nothing taken from the store');
my $r = $t->handshake(port(8443));
ok($r->{ok} && !defined $r->{staple}, 'the linked response is not stapled');

my $took = $t->reload(timeout => 60);
ok(defined $took, 'a reload goes through as well');

# The responder comes up: the staple is fetched and written over the link.
$t->start_ocsp_responder(ca => 'root', port => $ocsp);
my $staple = wait_for(sub { $t->handshake(port(8443))->{staple} }, 70);
ok($staple, 'fetched and stapled');
ok(wait_for(sub { !-l "$d/store/$id.der" && -s "$d/store/$id.der" }, 10), 'the link is replaced by the staple\'s file');
is($t->read_file('elsewhere.der'), $elsewhere, 'the link\'s target is not written through');
is((stat "$d/store/$id.der")[2] & 0777, 0600, 'the file is private (0600)');
ok(-l "$d/store/$zero.der" && -p "$d/store/$fifo.der", 'the other files are left as they are');
