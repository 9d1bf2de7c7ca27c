#!/usr/bin/perl

# A real DNS server for the tests: dns-server.pl PORT NAME=IP[,IP...] ...
# Answers A queries for the given names, an empty answer for their other
# types, and NXDOMAIN for every other name. Listens on 127.0.0.1 (UDP).
# A name listed in the file named by $DNS_FORGET (one per line, read at
# every query) is answered NXDOMAIN: a test can make a name disappear.

use strict;
use warnings;
use Net::DNS::Nameserver;

my ($port, @records) = @ARGV;
my %a = map { my ($n, $ip) = split /=/; (lc $n => $ip) } @records;

my $ns = Net::DNS::Nameserver->new(
	LocalAddr => '127.0.0.1',
	LocalPort => $port,
	Proto => 'udp',
	ReplyHandler => sub {
		my ($qname, $qclass, $qtype) = @_;
		my $ip = $a{lc $qname};
		if (defined $ENV{DNS_FORGET} && open my $f, '<', $ENV{DNS_FORGET}) {
			my %gone = map { chomp; (lc $_ => 1) } <$f>;
			undef $ip if $gone{lc $qname};
		}
		return ('NXDOMAIN', [], [], [], { aa => 1 }) unless defined $ip;
		return ('NOERROR', [], [], [], { aa => 1 }) unless $qtype eq 'A';
		my @rr = map { Net::DNS::RR->new("$qname 1 IN A $_") } split /,/, $ip;
		return ('NOERROR', \@rr, [], [], { aa => 1 });
	},
	Verbose => 0,
) or die "cannot start DNS server: $!\n";

$| = 1;
print "ready\n";
$ns->main_loop;
