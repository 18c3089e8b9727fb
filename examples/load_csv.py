"""Notebook-style data loading: write a CSV, load it (streamed, with a progress bar), look at
the result as a DataFrame, then load a DataFrame back in.

Runs on SQLite by default; set AR_URL to use another database. Needs pandas
(``pip install 'activerecord[dataframes]'``).
"""

import datetime as dt
import os
import pathlib
import tempfile
from typing import Annotated

import pandas as pd
from pydantic import Field

import activerecord
from activerecord import ActiveRecord, Col, LoadValidationError


class Measurement(ActiveRecord):
    __table_name__ = "example_load_measurements"

    id: int | None = None
    station: Annotated[str, Field(max_length=20), Col(index=True)]
    taken_on: dt.date
    celsius: float | None = None
    note: str = ""


activerecord.connect(os.environ.get("AR_URL", "sqlite://"))
Measurement.drop_table()
Measurement.create_table()

with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "measurements.csv"
    lines = ["Station,taken_on,celsius,note"]
    for day in range(1, 29):
        celsius = "" if day % 10 == 0 else f"{-5 + day * 0.5:.1f}"  # empty cell → NULL
        lines.append(f"OSLO,2024-02-{day:02d},{celsius},")
        lines.append(f"LIMA,2024-02-{day:02d},{20 + day % 3},sunny")
    path.write_text("\n".join(lines) + "\n")

    # Header names map to fields ("Station" → station); values convert through the model.
    loaded = Measurement.load_csv(
        path, columns={"Station": "station"}, batch_size=20, progress=True
    )
    print(f"loaded {loaded} rows from {path.name}")

    # A bad value is reported with its line number, and nothing is written.
    path.write_text("station,taken_on,celsius\nOSLO,2024-03-01,1.5\nOSLO,not a date,2\n")
    try:
        Measurement.load_csv(path)
    except LoadValidationError as exc:
        print("refused:", str(exc).splitlines()[1].strip())

# Back out as a DataFrame (streamed in chunks), ready for pandas.
df = Measurement.query().where({"station": "OSLO"}).order_by("taken_on").to_pandas()
print(df[["station", "taken_on", "celsius"]].head())
print(f"Oslo: mean {df['celsius'].mean():.2f} °C, {df['celsius'].isna().sum()} days missing")

# And a DataFrame in: NaN becomes NULL, numpy scalars become Python values.
extra = pd.DataFrame(
    {
        "station": ["BERGEN", "BERGEN"],
        "taken_on": pd.to_datetime(["2024-03-01", "2024-03-02"]),
        "celsius": [3.5, float("nan")],
    }
)
print("inserted", Measurement.insert_dataframe(extra), "rows from a DataFrame")
print(Measurement.query().where({"station": "BERGEN"}).to_dicts())
Measurement.drop_table()
