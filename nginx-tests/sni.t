#!/usr/bin/perl

# Virtual hosts on one address: after SNI picks the server, the handshake
# carries the staple of that server's certificate.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(7);
my $ocsp = port(8080);
$t->make_ca('root');
my @names = qw(a.test b.test c.test);
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for @names;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $servers = join '', map { <<"EOF" } @names;
    server {
        listen 127.0.0.1:8443 ssl;
        server_name $_;
        ssl_certificate $_.chain.crt;
        ssl_certificate_key $_.key;
    }
EOF
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    ssl_stapling on;
$servers}
EOF
$t->run(workers => 2);

for my $name (@names) {
	my $r = wait_for(sub {
		my $r = $t->handshake(port(8443), sni => $name);
		$r->{staple} ? $r : undef;
	}, 20);
	is($r && $r->{serial}, $t->serial($name), "$name: its certificate served");
	is_deeply([$t->staple_serials($r && $r->{staple})], [$t->serial($name)],
		"$name: stapled with its own status");
}
is($t->ocsp_requests, 3, 'one request per certificate');

