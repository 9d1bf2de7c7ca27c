#!/usr/bin/perl

# One certificate in several servers: each server's stapling settings
# decide its staple, as in nginx (its ssl_stapling.t). Servers with the
# same effective settings share one staple and one fetch; a server with
# another responder, or with ssl_stapling_verify and another trust, gets
# its own, fetched and checked with its own settings, and never another's.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(20);
my $a = port(8080);
my $b = port(8081);
$t->make_ca('root');
# A delegated signer: only servers that trust root.crt can verify it.
$t->make_cert('signer', ca => 'root', ext => 'extendedKeyUsage=OCSPSigning');
$t->make_cert('site', ca => 'root', ocsp => "http://127.0.0.1:$a/");
# Two responders for the same CA, told apart by their responses' validity.
$t->start_ocsp_responder(name => 'ocsp_a', ca => 'root', signer => 'signer', port => $a, ndays => 1);
$t->start_ocsp_responder(name => 'ocsp_b', ca => 'root', signer => 'signer', port => $b, nmin => 30);

my $site = <<'EOF';
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
EOF
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8084 ssl;
        server_name one.test;
$site
    }
    server {
        listen 127.0.0.1:8085 ssl;
        server_name two.test;
$site
    }
    server {
        listen 127.0.0.1:8086 ssl;
        server_name other.test;
$site
        ssl_stapling_responder http://127.0.0.1:8081/;
    }
    server {
        listen 127.0.0.1:8087 ssl;
        server_name trusted.test;
$site
        ssl_stapling_verify on;
        ssl_trusted_certificate root.crt;
    }
    server {
        listen 127.0.0.1:8088 ssl;
        server_name trusted2.test;
$site
        ssl_stapling_verify on;
        ssl_trusted_certificate root.crt;
    }
    server {
        listen 127.0.0.1:8082 ssl;
        server_name untrusted.test;
$site
        ssl_stapling_verify on;
    }
    server {
        listen 127.0.0.1:8083;
        location /status {
            ssl_stapling_status;
        }
    }
}
EOF
$t->run(workers => 2);

like($t->read_file('error.log'), qr/took over 1 certificate\(s\), 4 staple\(s\), in 6 http and 0 stream server\(s\)/,
	'the startup line: one certificate, four staples');

my %staple;
my %port = (aia => 8084, aia2 => 8085, other => 8086, trusted => 8087, trusted2 => 8088);
for my $p (qw(aia aia2 other trusted trusted2)) {
	$staple{$p} = wait_for(sub { $t->handshake(port($port{$p}))->{staple} }, 10);
	ok($staple{$p}, "$p: stapled");
}
ok(wait_for(sub {
	$t->read_file('error.log') =~ /cannot fetch OCSP response for certificate "[^"]*site\.chain\.crt" from http:\/\/127\.0\.0\.1:$a\/: OCSP response signature verification failed/
}, 10), 'verify on without the signer\'s root: the fetch is refused, logged');
my $r = $t->handshake(port(8082));
ok($r->{ok} && !defined $r->{staple}, 'verify on without the signer\'s root: no staple (not another server\'s)');

is($staple{aia2}, $staple{aia}, 'same settings in two servers: the same staple');
is($staple{trusted2}, $staple{trusted}, 'the same verify and trust in two servers: the same staple');
isnt($t->staple_validity($staple{other}), $t->staple_validity($staple{aia}), 'ssl_stapling_responder: its responder\'s staple, not the AIA one');

# One fetch per distinct setting: the AIA responder for (aia, aia2),
# (trusted, trusted2) and (untrusted); the other responder for (other).
is($t->ocsp_requests('ocsp_a'), 3, 'the AIA responder: one request per distinct setting (3)');
is($t->ocsp_requests('ocsp_b'), 1, 'the other responder: one request');

my $page = $t->status_page(port(8083));
ok($page, 'status page (200, JSON)');
my @items = @{$page->{certificates} // []};
is(scalar @items, 4, 'the status page lists one item per staple');
my %servers = map { join(',', @{$_->{servers}}) => $_ } @items;
is_deeply([sort keys %servers], ['one.test,two.test', 'other.test', 'trusted.test,trusted2.test', 'untrusted.test'],
	'each item with the servers it serves');
is(scalar(grep { $_->{sha256} eq $t->cert_sha256('site') } @items), 4, 'all four of the one certificate');
is(scalar(keys %{{map { $_->{id} => 1 } @items}}), 4, 'four distinct staple ids');
is($servers{'untrusted.test'}{status}, 'none', 'the refused staple: none');
is($servers{'other.test'}{responder}, "http://127.0.0.1:$b/", 'the other responder shown');

