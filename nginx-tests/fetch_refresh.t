#!/usr/bin/perl

# Short-lived responses (one minute) are refreshed before they expire:
# over three minutes of handshakes, every one is stapled, with a staple
# that is valid at that moment.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;
use Time::HiRes qw(sleep);

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(6);
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
ok(wait_for(sub { $t->handshake(port(8443))->{staple} }, 20), 'stapled at start');

my %seen;
my ($total, $stapled, $valid, @failed) = (0, 0, 0);
my $end = time + 180;
while (time < $end) {
	my $r = $t->handshake(port(8443));
	# A failed handshake (a loaded machine) is its own check, below.
	push(@failed, $r->{error}), next unless $r->{ok};
	$total++;
	if (my $s = $r->{staple}) {
		$stapled++;
		$seen{$s} = 1;
		my ($next) = $t->staple_text($s) =~ /Next Update: (.+ GMT)/;
		$valid++ if $next && `date -d '$next' +%s` > time;
	}
	sleep 1;
}
is(join('; ', @failed), '', 'no handshake failed');
is($stapled, $total, "all $total handshakes over 3 minutes stapled");
is($valid, $total, 'each with a staple valid at that moment');
cmp_ok(scalar keys %seen, '>=', 4, 'the staple was refreshed (' . (keys %seen) . ' distinct)');
cmp_ok($t->ocsp_requests, '<=', 10, 'about one request per half-validity (' . $t->ocsp_requests . ')');

