#!/usr/bin/perl

# Staples fetched before any client asks: a real responder (openssl ocsp)
# reached by host name through a real DNS server and nginx's resolver.
# 4 workers, 2 certificates (an http and a stream server; two http servers
# with an nginx before 1.27.2, without stream stapling): one request per
# certificate, whatever the number of workers; every handshake stapled; a
# reload fetches nothing; a certificate added by a reload is fetched, and
# its entry freed when a reload removes it.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;
use Time::HiRes qw(time);

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(18);
my ($dns, $ocsp) = (port(8980, udp => 1), port(8081));
$t->make_ca('root');
$t->make_cert('one', ca => 'root', ocsp => "http://ocsp.test:$ocsp/");
$t->make_cert('two', ca => 'root', type => 'ec', ocsp => "http://ocsp.test:$ocsp");
$t->make_cert('three', ca => 'root', type => 'ec', ocsp => "http://ocsp.test:$ocsp/");
$t->start_dns($dns, 'ocsp.test' => '127.0.0.1');
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

my $conf = <<'EOF';
worker_processes 4;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    resolver 127.0.0.1:%%PORT_8980_UDP%% ipv6=off;
    server {
        listen 127.0.0.1:8443 ssl reuseport;
        ssl_certificate one.chain.crt;
        ssl_certificate_key one.key;
        ssl_stapling on;
    }
    %%THIRD%%
}
stream {
    %%TEST_GLOBALS_STREAM%%

    resolver 127.0.0.1:%%PORT_8980_UDP%% ipv6=off;
    server {
        listen 127.0.0.1:8444 ssl reuseport;
        ssl_certificate two.chain.crt;
        ssl_certificate_key two.key;
        ssl_stapling on;
        return "ok\n";
    }
}
EOF
my $streams = 1;
unless ($t->stream_stapling) {
	$streams = 0;
	$conf =~ s/\}\nstream \{\n    %%TEST_GLOBALS_STREAM%%\n\n    resolver [^\n]*\n/\n/;
	$conf =~ s/        return "ok\\n";\n    \}\n\}\n/    }\n}\n/;
}
my $third = <<'EOF';
    server {
        listen 127.0.0.1:8445 ssl;
        ssl_certificate three.chain.crt;
        ssl_certificate_key three.key;
        ssl_stapling on;
    }
EOF
sub config {
	my ($with_third) = @_;
	(my $c = $conf) =~ s/%%THIRD%%/$with_third ? $third : ''/e;
	$t->write_file_expand('nginx.conf', "%%TEST_GLOBALS%%\ndaemon off;\n" . $c);
}
config(0);
my $start = time;
$t->run(workers => 4);

my %port = (one => 8443, two => 8444);
for my $name (sort keys %port) {
	my $first = wait_for(sub {
		my $r = $t->handshake(port($port{$name}));
		return $r->{staple};
	}, 1, "$name stapled");
	ok($first, "$name: stapled within 1 s of start, before any client asked")
		or diag($t->read_file('error.log'));
	diag(sprintf '%s: first staple %.2f s after start', $name, time - $start);
	is_deeply([$t->staple_serials($first)], [$t->serial($name)],
		"$name: the staple is for $name");
}

for my $name (sort keys %port) {
	my $stapled = 0;
	for (1 .. 40) {
		my $r = $t->handshake(port($port{$name}));
		$stapled++ if $r->{ok} && $r->{staple}
			&& grep { $_ eq $t->serial($name) } $t->staple_serials($r->{staple});
	}
	is($stapled, 40, "$name: 40 of 40 handshakes stapled");
}

is($t->ocsp_requests, 2, 'responder received exactly one request per certificate');
like($t->read_file('error.log'), qr/fetched from http:\/\/ocsp\.test:$ocsp\/: good/,
	'the fetch is logged with the responder by name');

my $took = $t->reload;
ok(defined $took, 'reloaded; old workers (and their fetch tasks) gone')
	or diag('took ' . ($took // 'forever'));
my $r = $t->handshake(port(8443));
ok($r->{staple}, 'first handshake after reload stapled');
$r = $t->handshake(port(8444));
ok($r->{staple}, 'first handshake after reload stapled (second certificate)');
# Give any (wrong) refetch a moment to reach the responder.
wait_for(sub { $t->ocsp_requests > 2 }, 2);
is($t->ocsp_requests, 2, 'no new request to the responder after reload');

config(1);
ok(defined $t->reload, 'reloaded with a third certificate');
ok(wait_for(sub { $t->handshake(port(8445))->{staple} }, 20), 'the new certificate is fetched and stapled');
is($t->ocsp_requests, 3, 'one new request, for the new certificate only');

config(0);
ok(defined $t->reload, 'reloaded without it');
like($t->read_file('error.log'), qr/took over 2 certificate\(s\), 2 staple\(s\), in @{[2 - $streams]} http and $streams stream server\(s\); 0 staple\(s\) from files, 0 from the store, 1 stale entr\(ies\) freed, 2 in zone/,
	'its entry is freed');
ok($t->handshake(port(8443))->{staple} && $t->handshake(port(8444))->{staple},
	'the others are still stapled');

