#!/usr/bin/perl

# ssl_stapling_verify as in nginx: responses signed by a delegated OCSP
# signer are only stapled when its root is trusted (ssl_trusted_certificate);
# without verification the signature alone is checked.

use FindBin;
use lib "$FindBin::Bin/lib";
use StaplingTest;

my $t = StaplingTest->new;
my $ocsp = $t->port('ocsp');
$t->make_ca('root');
$t->make_cert('signer', ca => 'root', ext => 'extendedKeyUsage=OCSPSigning');
for my $name (qw(untrusted trusted noverify)) {
	$t->make_cert($name, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/");
}
$t->start_ocsp_responder(ca => 'root', signer => 'signer', port => $ocsp);

$t->write_config(<<'EOF');
events { }
http {
    ssl_stapling on;
    server {
        listen 127.0.0.1:%%PORT_untrusted%% ssl;
        %%CERT untrusted%%
        ssl_stapling_verify on;
    }
    server {
        listen 127.0.0.1:%%PORT_trusted%% ssl;
        %%CERT trusted%%
        ssl_stapling_verify on;
        ssl_trusted_certificate root.crt;
    }
    server {
        listen 127.0.0.1:%%PORT_noverify%% ssl;
        %%CERT noverify%%
        ssl_stapling_verify off;
    }
}
EOF
$t->run;

ok(wait_for(sub { $t->handshake($t->port('trusted'))->{staple} }, 5),
	'verify on, root trusted: stapled');
ok(wait_for(sub { $t->handshake($t->port('noverify'))->{staple} }, 5),
	'verify off: stapled');

ok(wait_for(sub {
	$t->read_log =~ /cannot fetch OCSP response for certificate "[^"]*\/untrusted\.chain\.crt" from \S+: OCSP response signature verification failed/
}, 5), 'verify on, root untrusted: an error-log line names the certificate and the cause');
my $r = $t->handshake($t->port('untrusted'));
ok($r->{ok}, 'verify on, root untrusted: TLS served');
ok(!defined $r->{staple}, 'verify on, root untrusted: no staple');

$t->done;
