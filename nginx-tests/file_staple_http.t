#!/usr/bin/perl

# An http server with ssl_stapling_file, 4 workers, reuseport: every
# handshake that asks for a status gets the file's staple, whichever
# worker takes it, from the module's shared zone.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(5);
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->ocsp_response('site.der', ca => 'root', certs => ['site']);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 4;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl reuseport;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
        ssl_stapling_file site.der;
        location / { return 200 "ok\n"; }
    }
}
EOF
$t->run(workers => 4);

like($t->read_file('error.log'), qr/ssl_stapling: module took over 1 certificate\(s\), 1 staple\(s\), in 1 http and 0 stream server\(s\); 1 staple\(s\) from files/,
	'module announces the takeover');

my $want = $t->read_file('site.der');
my ($stapled, $served) = (0, 0);
for (1 .. 40) {
	my $r = $t->handshake(port(8443), request => "GET / HTTP/1.0\r\n\r\n");
	$stapled++ if $r->{ok} && defined $r->{staple} && $r->{staple} eq $want;
	$served++ if $r->{ok} && ($r->{response} // '') =~ m{^HTTP/1\.1 200 .*ok\n$}s;
}
is($stapled, 40, '40 of 40 handshakes carry the file\'s staple');
is($served, 40, '40 of 40 requests served');

my $r = $t->handshake(port(8443), no_status => 1);
ok($r->{ok} && !defined $r->{staple}, 'no staple without status_request');

is_deeply([$t->staple_serials($want)], [$t->serial('site')],
	'the staple is for the site certificate');

