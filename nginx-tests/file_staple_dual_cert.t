#!/usr/bin/perl

# RSA and ECDSA certificates in one server are two certificates to the
# module: each is checked against the staple file on its own and gets a
# staple only when the file has a status for it (nginx would hand the same
# file to both, whatever certificate it is for).

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(10);
$t->make_ca('root');
$t->make_cert('rsa', ca => 'root');
$t->make_cert('ecdsa', ca => 'root', type => 'ec');
$t->ocsp_response('both.der', ca => 'root', certs => ['rsa', 'ecdsa']);
$t->ocsp_response('rsa-only.der', ca => 'root', certs => ['rsa']);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_protocols TLSv1.2;
    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate rsa.chain.crt;
        ssl_certificate_key rsa.key;
        ssl_certificate ecdsa.chain.crt;
        ssl_certificate_key ecdsa.key;
        ssl_stapling on;
        ssl_stapling_file both.der;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        ssl_certificate rsa.chain.crt;
        ssl_certificate_key rsa.key;
        ssl_certificate ecdsa.chain.crt;
        ssl_certificate_key ecdsa.key;
        ssl_stapling on;
        ssl_stapling_file rsa-only.der;
    }
}
EOF
$t->run(workers => 2);

my %cipher = (
	rsa => 'ECDHE-RSA-AES128-GCM-SHA256',
	ecdsa => 'ECDHE-ECDSA-AES128-GCM-SHA256',
);
my %serial = map { $_ => $t->serial($_) } keys %cipher;

like($t->read_file('error.log'), qr/module took over 2 certificate\(s\), 4 staple\(s\), in 2 http and 0 stream server\(s\); 3 staple\(s\) from files/,
	'two certificates with two files each, three staples');

for my $type (qw(rsa ecdsa)) {
	my $r = $t->handshake(port(8443), version => 'TLSv1_2',
		ciphers => $cipher{$type});
	is($r->{serial}, $serial{$type}, "$type certificate served");
	ok(grep({ $_ eq $serial{$type} } $t->staple_serials($r->{staple})),
		"$type handshake's staple has the $type certificate's CertID");
}

my $r = $t->handshake(port(8444), version => 'TLSv1_2', ciphers => $cipher{rsa});
is_deeply([$t->staple_serials($r->{staple})], [$serial{rsa}],
	'rsa-only file: rsa handshake stapled with its own CertID');

$r = $t->handshake(port(8444), version => 'TLSv1_2', ciphers => $cipher{ecdsa});
ok($r->{ok}, 'rsa-only file: ecdsa handshake succeeds');
is($r->{serial}, $serial{ecdsa}, 'rsa-only file: ecdsa certificate served');
ok(!defined $r->{staple}, 'rsa-only file: ecdsa handshake gets no staple');

like($t->read_file('error.log'),
	qr/\[warn\].*"ssl_stapling_file" ".*rsa-only\.der" ignored for certificate ".*ecdsa\.chain\.crt": no status for this certificate/,
	'warning names the file, the certificate and the reason');

