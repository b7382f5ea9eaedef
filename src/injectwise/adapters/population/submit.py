"""Entry file for `spark-submit`, which wants a .py file rather than a console script:

    APP=$(python -c 'import injectwise.adapters.population.submit as m; print(m.__file__)')
    spark-submit --master spark://host:7077 "$APP" screen /data/export --on 2026-06-30 --engine spark --out /data/rows"""

from injectwise.adapters.cli.app import main

if __name__ == "__main__":
    main()
