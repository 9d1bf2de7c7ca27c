#!/usr/bin/perl

# Short-lived responses (one minute) are refreshed before they expire:
# over three minutes of handshakes, every one is stapled, with a staple
# that is valid at that moment.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;
use Time::HiRes qw(sleep);

my $t = StaplingTest->new;
my $ocsp = $t->port('ocsp');
$t->make_ca('root');
$t->make_cert('site', ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
$t->start_ocsp_responder(ca => 'root', port => $ocsp, nmin => 1);

$t->write_config(<<'EOF');
worker_processes 2;
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        %%CERT site%%
        ssl_stapling on;
    }
}
EOF
$t->run(workers => 2);
ok(wait_for(sub { $t->handshake($t->port(0))->{staple} }, 5), 'stapled at start');

my %seen;
my ($total, $stapled, $valid) = (0, 0, 0);
my $end = time + 180;
while (time < $end) {
	my $r = $t->handshake($t->port(0));
	$total++;
	if (my $s = $r->{staple}) {
		$stapled++;
		$seen{$s} = 1;
		my ($next) = $t->staple_text($s) =~ /Next Update: (.+ GMT)/;
		$valid++ if $next && `date -d '$next' +%s` > time;
	}
	sleep 1;
}
is($stapled, $total, "all $total handshakes over 3 minutes stapled");
is($valid, $total, 'each with a staple valid at that moment');
cmp_ok(scalar keys %seen, '>=', 4, 'the staple was refreshed (' . (keys %seen) . ' distinct)');
cmp_ok($t->ocsp_requests, '<=', 10, 'about one request per half-validity (' . $t->ocsp_requests . ')');

$t->done;
