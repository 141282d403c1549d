"""The common-friends job: for every pair of friends, the friends they share.

    yard dfs -put examples/common_friends/friends.txt /friends/friends.txt
    yard mr run examples/common_friends/common_friends.py --input /friends --output /out/friends
    yard dfs -cat /out/friends/part-r-00000

Each line is `person -> friend friend ...`. For every friend the mapper emits
the pair (person and friend, in order) with the person's whole friend list;
both people of a pair emit it, so the reducer gets the pair's two lists and
keeps what they have in common.
"""

from stackyard.mapreduce import Job


class CommonFriends(Job):
    reducers = 1

    def mapper(self, offset, line):
        person, _, friends = line.partition("->")
        person, friends = person.strip(), friends.split()
        for friend in friends:
            yield tuple(sorted((person, friend))), friends

    def reducer(self, pair, lists):
        first, *rest = [set(friends) for friends in lists]
        common = first.intersection(*rest)
        yield f"({' '.join(pair)}) -> ({' '.join(sorted(common))})", None
