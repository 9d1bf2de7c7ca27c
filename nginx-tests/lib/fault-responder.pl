#!/usr/bin/perl

# An OCSP responder that misbehaves on demand: fault-responder.pl PORT DIR
#
# A request for /CASE/... appends a line to DIR/CASE.count and is answered
# as DIR/CASE.mode says (read on every request, so a test can change it):
#   good        200, the body of DIR/CASE.good.der
#   file:NAME   200, the body of DIR/NAME
#   500, 404    that HTTP status
#   garbage     200, a body that is not DER
#   truncated   200, a Content-Length 100 bytes longer than the body sent
#   huge        200, 100 KB of body without Content-Length
#   hang        accept, read, never answer

use strict;
use warnings;
use IO::Socket::INET;

my ($port, $dir) = @ARGV;
$SIG{CHLD} = 'IGNORE';

my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1:$port",
	Listen => 128, ReuseAddr => 1) or die "cannot listen on $port: $!\n";
$| = 1;
print "ready\n";

while (1) {
	my $c = $srv->accept or next;
	my $pid = fork;
	if (!defined $pid || $pid) {
		close $c;
		next;
	}
	close $srv;
	handle($c);
	exit 0;
}

sub slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	binmode $fh;
	local $/;
	return scalar <$fh>;
}

sub reply {
	my ($c, $status, $body, %o) = @_;
	my $len = $o{length} // length $body;
	my $cl = $o{no_length} ? '' : "Content-Length: $len\r\n";
	print $c "HTTP/1.0 $status X\r\nContent-Type: application/ocsp-response\r\n"
		. "${cl}Connection: close\r\n\r\n$body";
	close $c;
}

sub handle {
	my ($c) = @_;
	my $req = '';
	while ($req !~ /\r\n\r\n/) {
		my $n = sysread($c, my $buf, 4096);
		return unless $n;
		$req .= $buf;
	}
	my ($case) = $req =~ m{^\w+ /([\w.-]+)/} or return reply($c, 400, '');
	if (open my $fh, '>>', "$dir/$case.count") {
		print $fh "1\n";
		close $fh;
	}
	my $mode = slurp("$dir/$case.mode") // 'good';
	$mode =~ s/\s+$//;

	return reply($c, 200, slurp("$dir/$case.good.der") // '') if $mode eq 'good';
	return reply($c, 200, slurp("$dir/$1") // '') if $mode =~ /^file:(.+)$/;
	return reply($c, $mode, "<html>error</html>\n") if $mode =~ /^\d+$/;
	return reply($c, 200, "this is not DER\n") if $mode eq 'garbage';
	if ($mode eq 'truncated') {
		my $body = slurp("$dir/$case.good.der") // '';
		return reply($c, 200, substr($body, 0, length($body) / 2),
			length => length($body) + 100);
	}
	return reply($c, 200, 'x' x (100 * 1024), no_length => 1) if $mode eq 'huge';
	if ($mode eq 'hang') {
		sleep 3600;
		return;
	}
	reply($c, 500, "unknown mode $mode\n");
}
