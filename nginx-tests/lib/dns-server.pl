#!/usr/bin/perl

# A real DNS server for the tests: dns-server.pl PORT NAME=IP[,IP...] ...
# Answers A queries for the given names, an empty answer for their other
# types, and NXDOMAIN for every other name. Listens on 127.0.0.1 (UDP).
# A name listed in the file named by $DNS_FORGET (one per line, read at
# every query) is answered NXDOMAIN: a test can make a name disappear.

use strict;
use warnings;
use IO::Socket::INET;
use Net::DNS;

# Its own loop over one UDP socket, with Net::DNS only for the packets:
# Net::DNS::Nameserver's serving calls changed (main_loop is gone since
# Net::DNS 1.4x, whose start_server forks TCP and UDP servers of its own).

my ($port, @records) = @ARGV;
my %a = map { my ($n, $ip) = split /=/; (lc $n => $ip) } @records;

my $socket = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
	Proto => 'udp') or die "cannot start DNS server on 127.0.0.1:$port: $!\n";

$| = 1;
print "ready\n";

while (1) {
	my $peer = $socket->recv(my $buffer, 65535);
	defined $peer or next;
	my $query = eval { Net::DNS::Packet->new(\$buffer) } or next;
	my ($question) = $query->question or next;
	my ($qname, $qtype) = ($question->qname, $question->qtype);
	my $ip = $a{lc $qname};
	if (defined $ENV{DNS_FORGET} && open my $f, '<', $ENV{DNS_FORGET}) {
		my %gone = map { chomp; (lc $_ => 1) } <$f>;
		undef $ip if $gone{lc $qname};
	}
	my $reply = $query->reply or next;
	$reply->header->aa(1);
	# reply() leaves the rcode as it pleases (FORMERR in Net::DNS 1.57).
	$reply->header->rcode(defined $ip ? 'NOERROR' : 'NXDOMAIN');
	if (defined $ip && $qtype eq 'A') {
		$reply->push(answer => map { Net::DNS::RR->new("$qname 1 IN A $_") } split /,/, $ip);
	}
	$socket->send($reply->data, 0, $peer);
}
