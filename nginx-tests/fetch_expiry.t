#!/usr/bin/perl

# The responder goes away after the first fetch: the staple is still
# served until its nextUpdate (one-minute responses here), and never after.

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

my $staple = wait_for(sub { $t->handshake($t->port(0))->{staple} }, 5);
ok($staple, 'stapled');
$t->stop_daemon('ocsp');

my ($next) = $t->staple_text($staple) =~ /Next Update: (.+ GMT)/;
my $next_ts = `date -d '$next' +%s` + 0;
ok($next_ts > time, "staple valid until $next");

my ($last_stapled, $first_bare, $bare_before, $other) = (0, 0, 0, 0);
while (time < $next_ts + 5) {
	my $r = $t->handshake($t->port(0));
	my $now = time;
	if ($r->{staple}) {
		$other++ unless $r->{staple} eq $staple;
		$last_stapled = $now;
	} else {
		$first_bare ||= $now;
		$bare_before++ if $now < $next_ts;
	}
	sleep 0.25;
}
is($other, 0, 'every staple served was the one fetched (nothing else was fetched)');
is($bare_before, 0, 'every handshake before nextUpdate stapled');
ok($last_stapled < $next_ts, 'no staple at or after nextUpdate');
ok($first_bare && $first_bare <= $next_ts + 1, 'the staple stops at nextUpdate');
like($t->read_log, qr/cannot fetch OCSP response for certificate "[^"]*\/site\.chain\.crt" from \S+: connect\(\) to 127\.0\.0\.1:$ocsp failed \(111: Connection refused\); retry in \d+ s; the previous staple is served until its nextUpdate/,
	'failed refresh logged, staple kept');

$t->done;
