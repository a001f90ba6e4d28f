"""Create the benchmark rows: ``--objects`` rows per contender model, all with value 0.

Prints one JSON object: ``{"<contender>": [{"pk": 1, "hashid": "..."}, ...], ...}``.
"""

import json

from django.core.management.base import BaseCommand

from benchapp.models import CONTENDER_MODELS


class Command(BaseCommand):
    help = "Create the rows the benchmark updates, and print their ids as JSON."

    def add_arguments(self, parser):
        parser.add_argument("--objects", type=int, default=100)

    def handle(self, *args, objects, **options):
        out = {}
        for name, model in CONTENDER_MODELS.items():
            model.objects.all().delete()
            # bulk_create sends no post_save: nobody is notified of the set-up.
            rows = model.objects.bulk_create([model(title="t0", value=0) for _ in range(objects)])
            ids = []
            for row in sorted(rows, key=lambda r: r.pk):
                entry = {"pk": row.pk}
                if hasattr(row, "hashid"):
                    entry["hashid"] = row.hashid
                ids.append(entry)
            out[name] = ids
        self.stdout.write(json.dumps(out))
