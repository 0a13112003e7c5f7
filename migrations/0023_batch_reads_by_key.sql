-- The group-committed batch reads its customers and products by key.
--
-- ontab_purchase_batch reads the batch's customers and products with
-- `business_id = tenant AND id = ANY (…)`, planned once per connection
-- (force_generic_plan). With a business of 1,000 customers (14 pages) the
-- planner priced the sixteen-odd primary-key probes above reading every
-- page, at the default random_page_cost of 4 (a random read four times a
-- sequential one: disks whose pages are not in memory), and chose a
-- sequential scan that compares every row of the business with every id
-- of the batch: about 150 µs per statement for one order, several times
-- per batch (bench/batch_cost.sh, ORDERS=1). A batch's rows are the ones
-- its customers and products were just read or written by (in shared
-- buffers), so a random read costs about what a sequential one does; 1.1
-- is the usual setting for such data. Set for this function only (and the
-- triggers its statements fire), so nothing else's plans change. A later
-- CREATE OR REPLACE of the function keeps this setting only if it states
-- it again.
ALTER FUNCTION ontab_purchase_batch(uuid[], uuid[], uuid[], int[], uuid[], bigint[])
    SET random_page_cost = 1.1;
