#!/usr/bin/perl

# The shared zone's size. Without ssl_stapling_zone it is sized for the
# staples the configuration needs (2,000 here: all stapled; the old fixed
# 1 MB held about half of 1,000). An explicit zone too small is one warning
# at startup naming the size needed; the staples that fit are fetched and
# served, the others are marked on the status page, the condition is one
# crit line per configuration, and nginx's own "ngx_slab_alloc() failed"
# lines are off.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl/)
	->has_daemon('openssl')->plan(31);
my $d = $t->testdir;
my $ocsp = port(8080);
$t->make_ca('root');
my @names = map { "c$_" } 1 .. 100;
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/") for @names;
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

sub status { $t->status_page(port(8081)) }

my $status_server = <<'EOF';
    server {
        listen 127.0.0.1:8081;
        location /status {
            ssl_stapling_status;
        }
    }
EOF

# --- 100 certificates in a 32k zone ---------------------------------------
my $servers = join '', map { <<"EOF" } @names;
    server {
        listen 127.0.0.1:8082 ssl;
        server_name $_.test;
        ssl_certificate $_.chain.crt;
        ssl_certificate_key $_.key;
        ssl_stapling on;
    }
EOF
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_zone tiny:32k;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

$servers
$status_server
}
EOF
$t->expect_log(qr/\[crit\] .*zone "tiny" \(32 KB\) is full/);
$t->run(workers => 2);

my $log = $t->read_file('error.log');
my $refused_at_start = sub { $_[0]{zone_full} && !$_[0]{fetches}{ok} && !$_[0]{fetches}{failed} };
my ($needed) = $log =~ /\[warn\] .*"ssl_stapling_zone" "tiny:32k" is too small for 100 staple\(s\): about (\d+) KB needed/;
ok($needed, 'too small for the configuration: a warning at startup naming the size needed');
# No server loads certificates by variables: no room is reserved for
# ssl_stapling_dynamic_max (256) of them, which alone would be over 512 KB.
ok($needed && $needed < 512, "the size needed is for the 100 staples only (" . ($needed // 0) . " KB)");
my @crit = $log =~ /(\[crit\] [^\n]*)/g;
is(scalar @crit, 1, 'one crit line');
like($crit[0] // '', qr/zone "tiny" \(32 KB\) is full: no room for (\d+) of 100 staple\(s\), which are not fetched or served; about \d+ KB needed/,
	'it says how many have no room and the size needed');
like($log, qr/took over 100 certificate\(s\), 100 staple\(s\), .* without room/, 'the startup line is printed');
unlike($log, qr/ngx_slab_alloc\(\) failed/, 'no "ngx_slab_alloc() failed" lines from nginx');

# The fill reckons staples not yet fetched at 1 KB; these responses are
# larger (the responder's certificate is in them), so a few it gave room
# turn out not to fit when fetched: those too are counted without room.
my ($refused) = ($crit[0] // '') =~ /no room for (\d+) of 100/;
my $j;
ok(wait_for(sub {
	$j = status() or return;
	return !grep { !$_->{valid} && !($_->{zone_full} && ($refused_at_start->($_) || $_->{fetches}{failed})) }
		@{$j->{certificates}};
}, 30), 'every staple is fetched and valid or has no room');
my @room = grep { !$_->{zone_full} } @{$j->{certificates}};
my $fit = scalar @room;
ok($fit > 0 && $fit < 100, "some staples fit ($fit of 100)");
is($j->{zone}{without_room}, 100 - $fit, 'the zone counts those without room');
is(scalar(grep { $refused_at_start->($_) } @{$j->{certificates}}), $refused // -1,
	'the staples refused at the start are never fetched');
my %fits = map { $_->{servers}[0] => 1 } @room;
my ($stapled, $wrong, @failed) = (0, 0);
for my $n (@names) {
	my $r = $t->handshake(port(8082), sni => "$n.test");
	push(@failed, "$n: $r->{error}"), next unless $r->{ok};
	$stapled++ if defined $r->{staple};
	$wrong++ if defined $r->{staple} != !!$fits{"$n.test"};
}
is(join('; ', @failed), '', 'no handshake failed');
is($stapled, $fit, "handshakes: exactly the $fit with room are stapled");
is($wrong, 0, 'and they are the ones the status page says have room');
my $fetches = 0;
$fetches += $_->{fetches}{ok} + $_->{fetches}{failed} for @{status()->{certificates}};
is($t->ocsp_requests, $fetches, "the responder was asked only for the fetches counted ($fetches)");
$t->stop;
my $hundred = $servers;

# --- 2,000 staples, no ssl_stapling_zone -----------------------------------
# One certificate, 2,000 servers, each with its own staple file: 2,000
# staples (a file belongs to its server).
$t->ocsp_response('resp.der', ca => 'root', certs => ['c1']);
mkdir "$d/files";
link "$d/resp.der", "$d/files/$_.der" or die "link: $!" for 1 .. 2000;
$servers = join '', map { <<"EOF" } 1 .. 2000;
    server {
        listen 127.0.0.1:8082 ssl;
        server_name s$_.test;
        ssl_certificate c1.chain.crt;
        ssl_certificate_key c1.key;
        ssl_stapling on;
        ssl_stapling_file files/$_.der;
    }
EOF
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

$servers
$status_server
}
EOF
$t->run(workers => 2);
$log = $t->read_file('error.log');
unlike($log, qr/\[crit\][^\n]*zone "ssl_stapling"/, 'no crit for the default zone');
like($log, qr/took over 1 certificate\(s\), 2000 staple\(s\), .* 2000 staple\(s\) from files, .* 2000 in zone "ssl_stapling" \(\d+ of (\d+) KB used\)\n/,
	'all 2,000 staples in the zone');
$j = status();
ok($j->{zone}{size} > 1048576, "the zone is sized for them ($j->{zone}{size} bytes)");
is(scalar(grep { $_->{valid} } @{$j->{certificates}}), 2000, 'the status page: 2,000 valid staples');
my $ok = 0;
for my $i (1, 2, 500, 999, 1000, 1500, 1999, 2000) {
	$ok++ if defined $t->handshake(port(8082), sni => "s$i.test")->{staple};
}
is($ok, 8, 'handshakes across the 2,000 servers are stapled');
$t->stop;

# --- a server loading its certificates by variables ------------------------
# The zone keeps room for ssl_stapling_dynamic_max of them: the warning says
# so, and the size it names is the larger for it.
$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

ssl_stapling_zone tiny:32k;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8082 ssl;
        ssl_certificate \$ssl_server_name.chain.crt;
        ssl_certificate_key \$ssl_server_name.key;
        ssl_stapling on;
    }
}
EOF
$t->run;
$log = $t->read_file('error.log');
my ($with) = $log =~ /\[warn\] .*"ssl_stapling_zone" "tiny:32k" is too small for 0 staple\(s\) and 256 certificate\(s\) loaded by variables: about (\d+) KB needed/;
ok($with, 'certificates loaded by variables: room for ssl_stapling_dynamic_max of them');
ok($with && $needed && $with > $needed, "more than for the 100 staples (" . ($with // 0) . " KB)");

$t->stop;

# --- a zone sized from what 100 staples take -------------------------------
# Responses of about 0.5 KB (no certificate in them, as many CAs answer). A
# 256k zone staples all 100, without a warning; so does a zone of twice
# what they took there, at a first start (no store: the sizes are not known
# before the fetches). Reckoning 2 KB for each unknown staple, as the module
# once did, refused a third of them in that zone.
$t->stop_daemon('ocsp');
$t->start_ocsp_responder(ca => 'root', port => $ocsp, name => 'ocsp-small', no_certs => 1);

sub sized_run {
	my ($size) = @_;
	$t->write_file_expand('nginx.conf', <<"EOF");
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
ssl_stapling_zone rt:$size;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

$hundred
$status_server
}
EOF
	my $from = -s "$d/error.log" // 0;
	$t->run(workers => 2);
	my $all = wait_for(sub {
		my $j = status() or return;
		return (grep { $_->{valid} } @{$j->{certificates}}) == 100;
	}, 30);
	my ($stapled, $bytes, @failed) = (0, 0);
	for my $n (@names) {
		my $r = $t->handshake(port(8082), sni => "$n.test");
		push(@failed, "$n: $r->{error}"), next unless $r->{ok};
		next unless defined $r->{staple};
		$stapled++;
		$bytes = length $r->{staple};
	}
	my $j = status();
	my $log = substr($t->read_file('error.log'), $from);
	$t->stop;
	return { all => $all, stapled => $stapled, failed => join('; ', @failed), bytes => $bytes,
		status => $j, log => $log };
}

my $r = sized_run('256k');
ok($r->{all}, 'a 256k zone: all 100 staples fetched and valid');
is($r->{failed}, '', 'no handshake failed');
is($r->{stapled}, 100, "all 100 handshakes stapled ($r->{bytes}-byte responses)");
unlike($r->{log}, qr/too small|is full|\[crit\]/, 'no warning that the zone is too small, no crit');
my $used = $r->{status}{zone}{used} // 0;
ok($used > 0 && $used < 256 * 1024, "the zone's use is measured ($used bytes, "
	. int($used / 100) . ' per staple with the zone\'s own pages)');

my $twice = int((2 * $used + 1023) / 1024);
$twice = 32 if $twice < 32;
$r = sized_run("${twice}k");
ok($r->{all}, "a zone of twice that (${twice}k) at a first start: all 100 fetched and valid");
is($r->{failed}, '', 'no handshake failed');
is($r->{stapled}, 100, 'all 100 handshakes stapled');
unlike($r->{log}, qr/too small|is full|\[crit\]/, 'no warning that the zone is too small, no crit');
is($r->{status}{zone}{without_room}, 0, 'none without room');
