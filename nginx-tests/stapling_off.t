#!/usr/bin/perl

# Servers with ssl_stapling off are left alone: no staple, even with a
# staple file configured; only the servers with stapling on are taken over.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
$t->make_ca('root');
$t->make_cert('site', ca => 'root');
$t->ocsp_response('site.der', ca => 'root', certs => ['site']);

$t->write_config(<<'EOF');
events { }
http {
    %%CERT site%%
    ssl_stapling_file site.der;

    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        ssl_stapling off;
        location / { return 200 "off\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT_1%% ssl;
        location / { return 200 "default\n"; }
    }
    server {
        listen 127.0.0.1:%%PORT_2%% ssl;
        ssl_stapling on;
        location / { return 200 "on\n"; }
    }
}
EOF
$t->run;

like($t->read_log, qr/module took over 1 certificate\(s\), 1 staple\(s\), in 1 http and 0 stream server\(s\)/,
	'only the server with stapling on is taken over');

for my $case ([0, 'off'], [1, 'default']) {
	my ($p, $name) = @$case;
	my $r = $t->handshake($t->port($p), request => "GET / HTTP/1.0\r\n\r\n");
	like($r->{response} // '', qr/\n\Q$name\E\n$/, "stapling $name: served");
	ok($r->{ok} && !defined $r->{staple}, "stapling $name: no staple");
}
my $r = $t->handshake($t->port(2));
is($r->{staple}, $t->read_file('site.der'), 'stapling on: stapled');

$t->stop;
$t->check_log;

# No server with stapling: the module stays out of the way entirely.
my $none = StaplingTest->new;
$none->make_ca('root');
$none->make_cert('site', ca => 'root');
$none->write_config(<<'EOF');
events { }
http {
    server {
        listen 127.0.0.1:%%PORT_0%% ssl;
        %%CERT site%%
        location / { return 200 "plain\n"; }
    }
}
EOF
$none->run;
$r = $none->handshake($none->port(0), request => "GET / HTTP/1.0\r\n\r\n");
like($r->{response} // '', qr/\nplain\n$/, 'no stapling anywhere: served');
ok(!defined $r->{staple}, 'no stapling anywhere: no staple');
unlike($none->read_log, qr/ssl_stapling:/, 'no stapling anywhere: module silent');
$none->stop;
$none->check_log;

done_testing;
