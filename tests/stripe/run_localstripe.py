"""`localstripe --from-scratch` without its disk snapshot: the test fixture's launcher.

    python run_localstripe.py --port P [--indexed-lists]

localstripe pickles its whole store to /tmp/localstripe.pickle after every write (to reload it on
a restart without --from-scratch). That makes each write cost O(objects held), so building N
accounts costs O(N²) (1,000 accounts: over 40 minutes), and every test session on the machine
shares that one file. A store started from scratch is never reloaded, so the snapshot is off.

--indexed-lists (benchmarks): localstripe answers every list request by scanning its whole store
(all objects of all types), and an invoice's export lists its charge's refunds three times, so a
customer's invoice list costs O(every object held). With the flag, the store keeps its objects per
type as well, and a list scans only the objects of its type, in the same (creation) order.

Either way the API the tests talk to is localstripe's own, unchanged.
"""
import sys

from localstripe import resources, server
from localstripe.errors import UserError


def _index_lists() -> None:
    store = resources.store
    by_type: dict[str, dict] = {}
    for key, value in store.items():
        by_type.setdefault(key.split(":", 1)[0], {})[key] = value

    class IndexedStore(resources.Store):
        def __setitem__(self, key, value):
            dict.__setitem__(self, key, value)
            by_type.setdefault(key.split(":", 1)[0], {})[key] = value

        def __delitem__(self, key):
            dict.__delitem__(self, key)
            del by_type[key.split(":", 1)[0]][key]

        def clear(self):
            dict.clear(self)
            by_type.clear()

    def list_all(cls, url, limit=None, starting_after=None, **kwargs):  # StripeObject._api_list_all
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs.keys()))
        li = resources.List(url, limit=limit, starting_after=starting_after)
        li._list = list(by_type.get(cls.object, {}).values())
        return li

    store.__class__ = IndexedStore
    resources.StripeObject._api_list_all = classmethod(list_all)


def main() -> None:
    resources.Store.dump_to_disk = lambda self: None
    if "--indexed-lists" in sys.argv:
        sys.argv.remove("--indexed-lists")
        _index_lists()
    if "--from-scratch" not in sys.argv:
        sys.argv.append("--from-scratch")
    server.start()


if __name__ == "__main__":
    main()
