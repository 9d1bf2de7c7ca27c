#!/usr/bin/perl

# nginx -t and nginx -s reload with the module: the zone is reused, the
# first handshake after a reload is stapled, old workers exit promptly,
# a changed staple file takes effect and entries of certificates that left
# the configuration are freed.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->make_cert('extra', ca => 'root');
$t->ocsp_response('first.der', ca => 'root', certs => ['site']);
$t->ocsp_response('second.der', ca => 'root', certs => ['site'], ndays => 2);
$t->ocsp_response('extra.der', ca => 'root', certs => ['extra']);

my $conf = <<'EOF';
worker_processes 2;
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        %%CERT site%%
        ssl_stapling on;
        ssl_stapling_file %%FILE%%;
    }
    %%EXTRA%%
}
EOF
my $extra = <<'EOF';
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        %%CERT extra%%
        ssl_stapling on;
        ssl_stapling_file extra.der;
    }
EOF
sub config {
	my ($file, $with_extra) = @_;
	(my $c = $conf) =~ s/%%FILE%%/$file/;
	$c =~ s/%%EXTRA%%/$with_extra ? $extra : ''/e;
	$t->write_config($c);
}

config('first.der', 1);
my ($rc, $out) = $t->test_config;
is($rc, 0, 'nginx -t succeeds with the module');
like($out, qr/test is successful/, 'nginx -t says so');

$t->run(workers => 2);
is($t->handshake($t->port(0))->{staple}, $t->read_file('first.der'), 'stapled at start');

my $took = $t->reload;
ok(defined $took, 'same config: old workers gone')
	or diag('took ' . ($took // 'forever'));
my $r = $t->handshake($t->port(0));
is($r->{staple}, $t->read_file('first.der'), 'first handshake after reload stapled');
like($t->read_log, qr/took over 2 certificate\(s\).*0 stale entr\(ies\) freed, 2 in zone(?s:.*)took over 2 certificate\(s\).*0 stale entr\(ies\) freed, 2 in zone/,
	'zone reused: nothing freed');

config('second.der', 0);
$took = $t->reload;
ok(defined $took, 'changed config: old workers gone')
	or diag('took ' . ($took // 'forever'));
is($t->handshake($t->port(0))->{staple}, $t->read_file('second.der'),
	'changed staple file served after reload');
like($t->read_log, qr/took over 1 certificate\(s\).*2 stale entr\(ies\) freed, 1 in zone/,
	'entries of the old file and of the removed server freed');

my $stapled = 0;
$stapled += ($t->handshake($t->port(0))->{staple} // '') eq $t->read_file('second.der')
	for 1 .. 10;
is($stapled, 10, 'every handshake after the reload stapled');

$t->done;
