#!/usr/bin/perl

# The responder goes away after the first fetch: the staple is still
# served until its nextUpdate (one-minute responses here), and never after.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;
use Time::HiRes qw(sleep);

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(8);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert('site', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp, nmin => 1);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        ssl_certificate site.chain.crt;
        ssl_certificate_key site.key;
        ssl_stapling on;
    }
}
EOF
$t->run(workers => 2);

my $staple = wait_for(sub { $t->handshake(port(8443))->{staple} }, 20);
ok($staple, 'stapled');
$t->stop_daemon('ocsp');

my ($next) = $t->staple_text($staple) =~ /Next Update: (.+ GMT)/;
my $next_ts = `date -d '$next' +%s` + 0;
ok($next_ts > time, "staple valid until $next");

# A handshake that failed (a loaded machine) is neither stapled nor not.
my ($last_stapled, $first_bare, $bare_before, $other, @failed) = (0, 0, 0, 0);
while (time < $next_ts + 5) {
	my $r = $t->handshake(port(8443));
	my $now = time;
	if (!$r->{ok}) {
		push @failed, $r->{error};
	} elsif ($r->{staple}) {
		$other++ unless $r->{staple} eq $staple;
		$last_stapled = $now;
	} else {
		$first_bare ||= $now;
		$bare_before++ if $now < $next_ts;
	}
	sleep 0.25;
}
is(join('; ', @failed), '', 'no handshake failed');
is($other, 0, 'every staple served was the one fetched (nothing else was fetched)');
is($bare_before, 0, 'every handshake before nextUpdate stapled');
ok($last_stapled < $next_ts, 'no staple at or after nextUpdate');
ok($first_bare && $first_bare <= $next_ts + 1, 'the staple stops at nextUpdate');
like($t->read_file('error.log'), qr/cannot fetch OCSP response for certificate "[^"]*\/site\.chain\.crt" from \S+: connect\(\) to 127\.0\.0\.1:$ocsp failed \(111: Connection refused\); retry in \d+ s; the previous staple is served until its nextUpdate/,
	'failed refresh logged, staple kept');

