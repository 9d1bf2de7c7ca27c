#!/usr/bin/perl

# Virtual hosts on one address: after SNI picks the server, the handshake
# carries the staple of that server's certificate.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my $ocsp = $t->port('ocsp');
$t->make_ca('root');
my @names = qw(a.test b.test c.test);
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for @names;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $servers = join '', map { <<"EOF" } @names;
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        server_name $_;
        %%CERT $_%%
    }
EOF
$t->write_config(<<"EOF");
worker_processes 2;
events { }
http {
    ssl_stapling on;
$servers}
EOF
$t->run(workers => 2);

for my $name (@names) {
	my $r = wait_for(sub {
		my $r = $t->handshake($t->port(0), sni => $name);
		$r->{staple} ? $r : undef;
	}, 5);
	is($r && $r->{serial}, $t->serial($name), "$name: its certificate served");
	is_deeply([$t->staple_serials($r && $r->{staple})], [$t->serial($name)],
		"$name: stapled with its own status");
}
is($t->ocsp_requests, 3, 'one request per certificate');

$t->done;
