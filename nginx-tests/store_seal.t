#!/usr/bin/perl

# Sealed staples: the directory store writes each accepted staple with a
# seal (an HMAC under the store's ".seal-key", which only the master's
# user may read), and a restart takes a sealed staple back without
# checking its signature again. A seal vouches only for what this module
# accepted for that very staple: one moved to another staple's file, one
# made with another key, or any key file that is not private to the
# master's user gives a full check, so a forged response is refused as
# before; the time rules apply to sealed staples at every start.

use warnings;
use strict;

use Test::More;
use Digest::SHA qw(hmac_sha256);

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(27);
my $d = $t->testdir;
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_ca('evil');
$t->make_cert($_, ca => 'root', ocsp => "http://127.0.0.1:$ocsp/") for qw(site two);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling_store store;
    ssl_stapling_verify on;
    ssl_trusted_certificate root.crt;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate two.chain.crt;
        ssl_certificate_key two.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8445;
        location /status {
            ssl_stapling_status;
        }
    }
}
EOF

my $LABEL = "ngx_ssl_stapling sealed staple v1\0";
my $SEAL = 50;

# $der sealed for staple $id with key bytes $key, claiming its status is
# good between $this and $next (Unix seconds).
sub seal {
	my ($key, $id, $der, $this, $next) = @_;
	my $fields = pack('CCq>q>', 1, 0, $this, $next);
	return $der . $fields . hmac_sha256($LABEL . pack('H*', $id) . $fields . $der, $key);
}

# Restarts nginx (the responder stays down); returns the new log lines.
sub restart {
	my $mark = length $t->read_file('error.log');
	$t->stop;
	$_[0]->() if $_[0];
	$t->run(workers => 2);
	return substr $t->read_file('error.log'), $mark;
}

$t->run(workers => 2);
my ($site_id, $two_id) = map { $t->staple_ids(port(8445), $_) } qw(site two);
my $site = wait_for(sub { $t->handshake(port(8443))->{staple} }, 10);
my $two = wait_for(sub { $t->handshake(port(8444))->{staple} }, 10);
ok($site && $two, 'both staples fetched and served');
my ($site_file, $two_file) = map { "$d/store/$_.der" } $site_id, $two_id;
ok(wait_for(sub { (-s $site_file // 0) == length($site) + $SEAL && (-s $two_file // 0) == length($two) + $SEAL }, 20),
	'each staple is written with a 50-byte seal after it');
my $stored = $t->read_file("store/$site_id.der");
is(substr($stored, 0, length $site), $site, 'the stored file starts with the staple served');
my @key = stat "$d/store/.seal-key";
ok(@key && -f _ && !-l "$d/store/.seal-key", 'the store has a key file');
is(sprintf('%o %d %d', $key[2] & 0777, $key[7], $key[4]), sprintf('600 32 %d', $>),
	'the key: mode 0600, 32 bytes, owned by the master\'s user');
like($t->read_file('error.log'), qr/\[notice\] .*made the key that seals the staples of the store "[^"]*store": "[^"]*\.seal-key"/,
	'making the key is a notice naming it');
my $key = $t->read_file('store/.seal-key');

# Restart with the responder down: both staples from their seals.
$t->stop_daemon('ocsp');
my $log = restart();
like($log, qr/2 staple\(s\) read from the store "[^"]*" and checked in [\d.]+ s \(2 by their seal\)/,
	'responder down, restart: both staples taken by their seals');
is($t->handshake(port(8443))->{staple}, $site, 'site: stapled at the first handshake');
is($t->handshake(port(8444))->{staple}, $two, 'two: stapled at the first handshake');

# Site's sealed file put in two's place: the seal is for another staple,
# so two's response is checked in full, and it is another certificate's.
$log = restart(sub { $t->write_file("store/$two_id.der", $stored) });
like($log, qr/\[warn\] .*stored OCSP response "[^"]*\Q$two_id\E\.der" for certificate "[^"]*two\.chain\.crt" ignored: no status for this certificate .*another certificate/,
	'a sealed file moved to another staple: checked in full, refused');
like($log, qr/1 staple\(s\) read from the store .*\(1 by their seal\)/, 'only site\'s seal vouched');
ok($t->unstapled(port(8444)), 'two: no staple');
is($t->handshake(port(8443))->{staple}, $site, 'site: still stapled');

# A response signed by a CA the server does not trust, sealed with a key
# of the forger's own: the seal does not open, the full check refuses it.
$t->ocsp_response('forged.der', ca => 'root', signer => 'evil', certs => ['two']);
my $forged = $t->read_file('forged.der');
my $attacker = 'k' x 32;
$log = restart(sub { $t->write_file("store/$two_id.der", seal($attacker, $two_id, $forged, time - 60, time + 86400)) });
like($log, qr/\[warn\] .*"[^"]*\Q$two_id\E\.der" for certificate "[^"]*two\.chain\.crt" ignored: OCSP response signature verification failed/,
	'a forged response with a seal of another key: checked in full, refused');
ok($t->unstapled(port(8444)), 'the forged response is not served');

# The forger's key put in place of the store's: not the master's user's
# file, so no key is used, and every stored staple is checked in full.
$log = restart(sub {
	$t->write_file('store/.seal-key', $attacker);
	chmod 0600, "$d/store/.seal-key";
	chown 65534, 65534, "$d/store/.seal-key" or die "chown: $!";
});
like($log, qr/\[warn\] .*the store's key "[^"]*\.seal-key" is not used: it belongs to uid 65534, not to uid $> the master process runs as; stored staples are checked in full/,
	'a key file of another user: a warning, not used');
like($log, qr/\[warn\] .*\Q$two_id\E\.der" .*ignored: OCSP response signature verification failed/,
	'the forged response sealed with that key is still refused');
like($log, qr/1 staple\(s\) read from the store .*\(0 by their seal\)/, 'site\'s staple checked in full');
is($t->handshake(port(8443))->{staple}, $site, 'and served');

# A key file others may read: not used either.
$log = restart(sub {
	$t->write_file('store/.seal-key', $key);
	chown 0, 0, "$d/store/.seal-key";
	chmod 0644, "$d/store/.seal-key";
});
like($log, qr/\[warn\] .*is not used: its mode 644 lets others read it/, 'a key file others may read: a warning, not used');

# The store's own key: a sealed staple whose nextUpdate has passed (nginx
# was down past it) is refused by the time rules.
$log = restart(sub {
	chmod 0600, "$d/store/.seal-key";
	$t->write_file("store/$two_id.der", seal($key, $two_id, $two, time - 2 * 86400, time - 86400));
});
like($log, qr/\[warn\] .*\Q$two_id\E\.der" .*ignored: OCSP response expired 86\d\d\d s ago/,
	'a sealed staple past its nextUpdate: refused');
ok($t->unstapled(port(8444)), 'and not served');

# The key removed: a new one is made, the staples sealed with the old one
# are checked in full and served.
$log = restart(sub {
	unlink "$d/store/.seal-key" or die "unlink: $!";
	$t->write_file("store/$two_id.der", $two . substr($stored, length $site));
});
like($log, qr/\[notice\] .*made the key that seals the staples/, 'key removed: a new one is made');
isnt($t->read_file('store/.seal-key'), $key, 'another key');
like($log, qr/2 staple\(s\) read from the store .*\(0 by their seal\)/, 'both staples checked in full');
is($t->handshake(port(8443))->{staple}, $site, 'site: stapled');
is($t->handshake(port(8444))->{staple}, $two, 'two: stapled (its file\'s stale seal is ignored)');
