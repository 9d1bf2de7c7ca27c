#!/usr/bin/perl

# ssl_stapling_store: accepted staples are written to disk, atomically, and
# read back before the workers serve, so the first handshake after a
# restart is stapled even while the responder is down. Files that cannot
# be used are ignored with one warning each; a store the workers cannot
# write is one error at startup.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(21);
my $d = $t->testdir;
my $ocsp = port(8080);
my $closed = port(8081);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$ocsp/");
$t->make_cert('two', ca => 'root', ocsp => "http://127.0.0.1:$closed/");
$t->make_cert('gone', ca => 'root', ocsp => "http://127.0.0.1:$closed/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

sub config {
	my ($store, %o) = @_;
	my $two = $o{two} ? <<'EOF' : '';
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate two.chain.crt;
        ssl_certificate_key two.key;
        ssl_stapling on;
    }
EOF
	$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling_store $store;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
$two
    server {
        listen 127.0.0.1:8445;
        location /status {
            ssl_stapling_status;
        }
    }
}
EOF
}

config('store');
$t->run(workers => 2);
my $id = $t->staple_ids(port(8445), 'site');
my $file = "$d/store/$id.der";
my $fetched = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
ok($fetched, 'fetched staple served');
ok(wait_for(sub { -s $file }, 20), 'the staple is written to the store as <staple id>.der');
ok(wait_for(sub { -s $file == length($fetched) + 50 }, 20) && substr($t->read_file("store/$id.der"), 0, length $fetched) eq $fetched,
	'the stored file is the staple served, and its seal (store_seal.t)');
opendir(my $dh, "$d/store") or die;
my @names = sort grep { !/^\.\.?$/ } readdir $dh;
closedir $dh;
is_deeply(\@names, ['.seal-key', "$id.der"], 'nothing else in the store but its key (no temporary file left)');
my $mode = (stat "$d/store")[2] & 07777;
is(sprintf('%o', $mode), '700', 'the store directory nginx created is private');

# Restart with the responder down: the first handshake is stapled.
$t->stop;
$t->stop_daemon('ocsp');
$t->run(workers => 2);
my $r = $t->handshake(port(8443));
is($r->{staple}, $fetched, 'responder down, after a restart: the first handshake is stapled from the store');
like($t->read_file('error.log'), qr/took over 1 certificate\(s\), 1 staple\(s\), .* 0 staple\(s\) from files, 1 from the store/,
	'the start logs the staple read from the store');
my $stapled = grep { defined $t->handshake(port(8443))->{staple} } 1 .. 6;
is($stapled, 6, 'every handshake of both workers stapled');

# Files that cannot be used: corrupt (for a configured certificate), for
# another certificate (expired: removed; still valid: kept), expired.
$t->stop;
config('store', two => 1);
$t->run(workers => 2);
my $two = $t->staple_ids(port(8445), 'two');
$t->stop;
$t->write_file("store/$two.der", "this is not an OCSP response");
my $foreign_old = 'ab' x 32;
$t->ocsp_response("store/$foreign_old.der", ca => 'root', certs => ['gone'], nmin => 1, shift => '-1d');
my $foreign_new = 'cd' x 32;
$t->ocsp_response("store/$foreign_new.der", ca => 'root', certs => ['gone'], ndays => 1);
config('store', two => 1);
$t->run(workers => 2);
my $log = $t->read_file('error.log');
like($log, qr/\[warn\] .*stored OCSP response "[^"]*\Q$two\E\.der" for certificate "[^"]*two\.chain\.crt" ignored: not a DER-encoded OCSP response/,
	'corrupt file: one warning naming it and the certificate');
like($log, qr/\[warn\] .*"[^"]*\Q$foreign_old\E\.der" in the store is for no configured certificate; ignored and removed/,
	'expired file for no configured certificate: warning, removed');
like($log, qr/\[warn\] .*"[^"]*\Q$foreign_new\E\.der" in the store is for no configured certificate; ignored$/m,
	'valid file for no configured certificate: warning, kept');
ok(!-e "$d/store/$foreign_old.der" && -e "$d/store/$foreign_new.der", 'only the expired one is removed');
ok($t->unstapled(port(8444)), 'no staple from the corrupt file');
is($t->handshake(port(8443))->{staple}, $fetched, 'the good stored staple is still served');

# An expired stored staple for a configured certificate.
$t->stop;
$t->ocsp_response("store/$two.der", ca => 'root', certs => ['two'], nmin => 1, shift => '-1d');
$t->run(workers => 2);
like($t->read_file('error.log'), qr/stored OCSP response "[^"]*\Q$two\E\.der" for certificate "[^"]*two\.chain\.crt" ignored: OCSP response expired/,
	'expired stored staple: warning');
ok($t->unstapled(port(8444)), 'no staple from the expired file');
$t->stop;

# A file an earlier release wrote, named by the certificate's SHA-256
# alone: used for the staple whose checks it passes (responder down).
unlink "$d/store/$id.der", "$d/store/$two.der" or die "unlink: $!";
my $legacy = $t->cert_sha256('site');
$t->write_file("store/$legacy.der", $fetched);
config('store');
$t->run(workers => 2);
is($t->handshake(port(8443))->{staple}, $fetched,
	'a file named by the certificate (earlier release): its staple served at the first handshake');
like($t->read_file('error.log'), qr/took over 1 certificate\(s\), 1 staple\(s\), .* 1 from the store/,
	'counted as read from the store');
$t->stop;

# A store the workers cannot write: one error at startup, nginx runs.
$t->write_file('not-a-dir', 'x');
config('not-a-dir');
$t->run(workers => 2);
my @errors = $t->read_file('error.log') =~ /\[error\] [^\n]*ssl_stapling_store "[^"]*not-a-dir": it is not a directory; staples are not written/g;
is(scalar @errors, 1, 'a store that is a file: one error at startup');
$t->stop;

SKIP: {
	skip 'the worker user differs from the master only when nginx runs as root', 2 if $> != 0;
	mkdir "$d/rootonly", 0755;
	config('rootonly');
	$t->run(workers => 2);
	@errors = $t->read_file('error.log') =~ /\[error\] [^\n]*ssl_stapling_store "[^"]*rootonly": the worker processes cannot write to it: Permission denied/g;
	is(scalar @errors, 1, 'a store only root can write: one error naming the cause');
	ok($t->handshake(port(8443))->{ok}, 'nginx serves all the same');
	$t->stop;
}

