#!/usr/bin/perl

# What nginx 1.29 changed around stapling, with the module as with nginx
# alone. The server a handshake's SNI names decides whether it is stapled
# (nginx 1.29.2 picks that server in the ClientHello callback, earlier
# versions in the servername callback; the same handshakes on every
# version): from a default server with stapling to a named one without,
# and from a default server without to a named one with. And nginx 1.29.3
# refuses "ssl_stapling" together with "ssl_certificate_compression" (a
# compressed certificate cannot carry a staple): the same refusal, the
# same exit code with the module loaded, in http and stream.

use warnings;
use strict;

use Test::More;

use Test::Nginx;
use Test::Nginx::Stapling;

my $t = Test::Nginx::Stapling->new->has(qw/http http_ssl socket_ssl socket_ssl_sni/)
	->has_daemon('openssl')->plan(13);
my $ocsp = port(8080);
$t->make_ca('root');
$t->make_cert($_, ca => 'root', type => 'ec', ocsp => "http://127.0.0.1:$ocsp/")
	for qw(a b c);
$t->start_ocsp_responder(ca => 'root', port => $ocsp);

$t->write_file_expand('nginx.conf', <<'EOF');
%%TEST_GLOBALS%%

daemon off;

worker_processes 2;
events { }
http {
    %%TEST_GLOBALS_HTTP%%

    server {
        listen 127.0.0.1:8443 ssl;
        server_name a.test;
        ssl_certificate a.chain.crt;
        ssl_certificate_key a.key;
        ssl_stapling on;
    }
    server {
        listen 127.0.0.1:8443 ssl;
        server_name b.test;
        ssl_certificate b.chain.crt;
        ssl_certificate_key b.key;
        ssl_stapling off;
    }
    server {
        listen 127.0.0.1:8443 ssl;
        server_name c.test;
        ssl_certificate c.chain.crt;
        ssl_certificate_key c.key;
        ssl_stapling on;
    }

    server {
        listen 127.0.0.1:8444 ssl;
        server_name b.test;
        ssl_certificate b.chain.crt;
        ssl_certificate_key b.key;
        ssl_stapling off;
    }
    server {
        listen 127.0.0.1:8444 ssl;
        server_name c.test;
        ssl_certificate c.chain.crt;
        ssl_certificate_key c.key;
        ssl_stapling on;
    }
}
EOF
$t->run(workers => 2);

# The staple of certificate $name, if $r is a handshake stapled with it.
sub stapled_with {
	my ($r, $name) = @_;
	return $r->{ok} && ($r->{serial} // '') eq $t->serial($name)
		&& join(' ', $t->staple_serials($r->{staple})) eq $t->serial($name);
}

ok(wait_for(sub { stapled_with($t->handshake(port(8443)), 'a') }, 10),
	'default server, stapling on, no SNI: its certificate, its staple');
ok(wait_for(sub { stapled_with($t->handshake(port(8443), sni => 'c.test'), 'c') }, 10),
	'SNI to another server with stapling on: its certificate, its staple');
my $r = $t->handshake(port(8443), sni => 'b.test');
ok($r->{ok} && $r->{serial} eq $t->serial('b') && !defined $r->{staple},
	'SNI from a stapled default server to one with stapling off: its certificate, no staple');
ok(stapled_with($t->handshake(port(8443), sni => 'a.test'), 'a'), 'SNI naming the default server: stapled');

$r = $t->handshake(port(8444));
ok($r->{ok} && $r->{serial} eq $t->serial('b') && !defined $r->{staple},
	'default server with stapling off: no staple');
ok(stapled_with($t->handshake(port(8444), sni => 'c.test'), 'c'),
	'SNI from it to a server with stapling on: that server\'s staple');
$t->stop;

SKIP: {
	skip 'nginx refuses ssl_stapling with ssl_certificate_compression since 1.29.3', 7
		unless $t->has_version('1.29.3');

	my $server = <<'EOF';
        ssl_certificate a.chain.crt;
        ssl_certificate_key a.key;
        ssl_certificate_compression on;
EOF
	my $conf = sub {
		my ($stapling, $block) = @_;
		my $extra = $block eq 'stream' ? '        return "ok\n";' : '';
		$block = "$block {\n    %%TEST_GLOBALS_\U$block\E%%\n";
		return "%%TEST_GLOBALS%%\ndaemon off;\nevents { }\n$block"
			. "    server {\n        listen 127.0.0.1:8445 ssl;\n$server"
			. "        ssl_stapling $stapling;\n$extra\n    }\n}\n";
	};
	my $refused = qr/\[emerg\] .*"ssl_stapling" is incompatible with "ssl_certificate_compression"/;
	$t->expect_log($refused);

	$t->without_module->write_file_expand('nginx.conf', $conf->('on', 'http'));
	my ($rc, $out) = $t->test_config;
	isnt($rc, 0, 'nginx alone: stapling with certificate compression refused');
	like($out, $refused, 'nginx alone: its message');

	$t->with_module->write_file_expand('nginx.conf', $conf->('on', 'http'));
	my ($rc_module, $out_module) = $t->test_config;
	is($rc_module, $rc, 'with the module: refused the same way (exit code)');
	like($out_module, $refused, 'with the module: nginx\'s message');
	unlike($out_module, qr/panicked|signal|ssl_stapling: module took over/,
		'with the module: no crash, nothing taken over');

	$t->write_file_expand('nginx.conf', $conf->('off', 'http'));
	($rc, $out) = $t->test_config;
	is($rc, 0, 'with the module: certificate compression in a server without stapling is accepted')
		or diag($out);

	SKIP: {
		skip 'stream servers have ssl_stapling since nginx 1.27.2', 1 unless $t->stream_stapling;
		$t->write_file_expand('nginx.conf', $conf->('on', 'stream'));
		($rc, $out) = $t->test_config;
		like($out, $refused, 'a stream server: refused as well, with the module');
	}
}
