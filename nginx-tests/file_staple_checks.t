#!/usr/bin/perl

# Staple files that fail a check: a warning naming the file, the
# certificate and the reason; nginx starts and serves TLS; nothing is
# stapled (nginx alone would staple each of these files as it is).
# A file that is not DER at all is refused by nginx itself, with [emerg].

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->make_cert('other', ca => 'root');
$t->ocsp_response('other.der', ca => 'root', certs => ['other']);
# made "two days ago", valid for one day: expired yesterday
$t->ocsp_response('expired.der', ca => 'root', certs => ['site'], shift => '-2d');
# made "tomorrow": thisUpdate a day in the future
$t->ocsp_response('future.der', ca => 'root', certs => ['site'], shift => '+1d');
$t->ocsp_response('good.der', ca => 'root', certs => ['site']);

my $servers = '';
my %port = (other => 0, expired => 1, future => 2, good => 3);
for my $f (sort keys %port) {
	$servers .= <<"EOF";
    server {
        listen 127.0.0.1:%%PORT_$port{$f}%% ssl;
        %%CERT site%%
        ssl_stapling on;
        ssl_stapling_file $f.der;
        location / { return 200 "$f\\n"; }
    }
EOF
}
$t->write_config("events { }\nhttp {\n$servers}\n");
$t->run;

my $log = $t->read_log;
my %reason = (
	other => qr/no status for this certificate in the OCSP response/,
	expired => qr/OCSP response expired \d+ s ago/,
	future => qr/OCSP response has a thisUpdate \d+ s in the future/,
);
for my $f (sort keys %reason) {
	like($log, qr/\[warn\] .*"ssl_stapling_file" ".*\/$f\.der" ignored for certificate ".*site\.chain\.crt": $reason{$f}/,
		"$f: warning names file, certificate and reason");
	my $r = $t->handshake($t->port($port{$f}), request => "GET / HTTP/1.0\r\n\r\n");
	ok($r->{ok} && ($r->{response} // '') =~ /^HTTP\/1\.1 200 .*\Q$f\E\n$/s,
		"$f: TLS served normally");
	ok(!defined $r->{staple}, "$f: no staple");
}

my $r = $t->handshake($t->port($port{good}));
is($r->{staple}, $t->read_file('good.der'), 'good file beside them is stapled');
unlike($log, qr/good\.der" ignored/, 'good file: no warning');

$t->stop;
$t->check_log;

# Not DER at all: nginx's own ssl module refuses the configuration.
my $bad = StaplingTest->new;
$bad->make_ca('root');
$bad->make_cert('site', ca => 'root');
$bad->write_file('garbage.der', "this is not an OCSP response\n");
$bad->write_config(<<'EOF');
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        %%CERT site%%
        ssl_stapling on;
        ssl_stapling_file garbage.der;
    }
}
EOF
my $out = $bad->run(expect_failure => 1);
ok(defined $out, 'nginx refuses to start with a non-DER staple file');
like($out // '', qr/\[emerg\].*d2i_OCSP_RESPONSE_bio\(".*garbage\.der"\) failed/,
	'the [emerg] reaches the user');
ok(!-e $bad->testdir . '/nginx.pid', 'no nginx left running');
$bad->expect_log(qr/\[emerg\].*d2i_OCSP_RESPONSE_bio/);
$bad->check_log;

done_testing;
